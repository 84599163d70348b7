using System.Text.Json.Serialization;

namespace Bulk.Contracts.Outcomes;

/// <summary>The kinds of fact the outcomes stream records.</summary>
public static class OutcomeTypes
{
    /// <summary>The Front enqueued a campaign (carries its total and idempotency key).</summary>
    public const string Accepted = "accepted";

    /// <summary>What happened to some recipients of a campaign: delivered, failed, deferred, suppressed.</summary>
    public const string Progress = "progress";

    /// <summary>Dead-lettered recipients were put back on the work queue by an operator.</summary>
    public const string Replayed = "replayed";

    /// <summary>An operator paused the campaign: Workers send nothing more of it and keep its work on the broker.</summary>
    public const string Paused = "paused";

    /// <summary>A paused campaign goes on where it stopped.</summary>
    public const string Resumed = "resumed";

    /// <summary>What is left of the campaign is dropped; it is never sent.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>The relay refuses the campaign's sender (MAIL FROM, AUTH, DATA again and again): nothing more is sent until someone resumes it.</summary>
    public const string Held = "held";

    /// <summary>Written by a process to learn when its tail has caught up with the stream; carries no fact.</summary>
    public const string Marker = "marker";
}

/// <param name="Reason">Why a campaign is held: the relay's reply.</param>
/// <summary>One entry of the append-only outcomes stream. Every process folds these into its own <see cref="CampaignLedger"/>.</summary>
/// <remarks>Outcomes of many recipients travel together (one entry per campaign per flush), so the log costs far fewer messages than mails.</remarks>
public sealed record OutcomeEvent(
    string Type,
    string CampaignId,
    DateTimeOffset At,
    int Total = 0,
    string? IdempotencyKey = null,
    string? RequestHash = null,
    IReadOnlyList<int>? Delivered = null,
    IReadOnlyList<FailedRecipient>? Failed = null,
    IReadOnlyList<DeferredRecipient>? Deferred = null,
    IReadOnlyList<int>? Replayed = null,
    int DuplicatesDropped = 0,
    IReadOnlyList<int>? Suppressed = null,
    string? Reason = null)
{
    /// <summary>A marker entry with the given id, which travels in the <c>campaignId</c> field.</summary>
    public static OutcomeEvent Marker(string id) => new(OutcomeTypes.Marker, id, DateTimeOffset.UtcNow);

    /// <summary>A marker's id (the <c>campaignId</c> field on the wire); null for every other entry.</summary>
    [JsonIgnore]
    public string? MarkerId => Type == OutcomeTypes.Marker ? CampaignId : null;
}

/// <summary>A recipient that will not be mailed, with the relay's last reply; <paramref name="DeadLettered"/> when its retry tiers ran out.</summary>
public sealed record FailedRecipient(int Index, string Email, string Reply, bool DeadLettered = false);

/// <summary>A recipient put on a delay tier after a transient failure.</summary>
public sealed record DeferredRecipient(int Index, int Attempt, string Reason);
