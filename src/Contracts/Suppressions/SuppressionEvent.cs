using System.Text.Json.Serialization;

namespace Bulk.Contracts.Suppressions;

/// <summary>The kinds of fact the suppressions stream records; on the wire, the name given to each.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SuppressionType>))]
public enum SuppressionType
{
    /// <summary>The address is never mailed again by any campaign.</summary>
    [JsonStringEnumMemberName("suppressed")]
    Suppressed,

    /// <summary>An operator took the address off the list.</summary>
    [JsonStringEnumMemberName("unsuppressed")]
    Unsuppressed,

    /// <summary>Written by a process to learn when its tail has read everything before it; carries no fact.</summary>
    [JsonStringEnumMemberName("marker")]
    Marker,
}

/// <summary>Why an address is suppressed.</summary>
public static class SuppressionReasons
{
    /// <summary>The recipient used an unsubscribe link or the one-click POST.</summary>
    public const string Unsubscribed = "unsubscribed";

    /// <summary>The relay answered that the mailbox does not exist (5.1.1).</summary>
    public const string HardBounce = "hard_bounce";

    /// <summary>Added through <c>POST /suppressions</c>.</summary>
    public const string Operator = "operator";
}

/// <summary>One entry of the suppressions stream.</summary>
/// <param name="CampaignId">The campaign whose link or bounce caused it, when there is one.</param>
/// <param name="Detail">The relay's reply for a bounce, an operator's note otherwise.</param>
/// <param name="MoreEmails">
/// Further addresses with the same type, time, reason and detail. An operator's list is one entry, so that the broker
/// records it whole or not at all.
/// </param>
public sealed record SuppressionEvent(
    SuppressionType Type,
    string Email,
    DateTimeOffset At,
    string? Reason = null,
    string? CampaignId = null,
    string? Detail = null,
    IReadOnlyList<string>? MoreEmails = null)
{
    /// <summary>A marker entry with the given id, which travels in the <c>email</c> field.</summary>
    public static SuppressionEvent Marker(string id) => new(SuppressionType.Marker, id, DateTimeOffset.UtcNow);

    /// <summary>A marker's id (the <c>email</c> field on the wire); null for every other entry.</summary>
    [JsonIgnore]
    public string? MarkerId => Type == SuppressionType.Marker ? Email : null;
}

/// <summary>An address on the suppression list, and why.</summary>
public sealed record Suppression(string Email, string Reason, DateTimeOffset At, string? CampaignId, string? Detail);
