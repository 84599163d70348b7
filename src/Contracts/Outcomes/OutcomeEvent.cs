using System.Text.Json.Serialization;

namespace Bulk.Contracts.Outcomes;

/// <summary>The kinds of fact the outcomes stream records; on the wire, the name given to each.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OutcomeType>))]
public enum OutcomeType
{
    /// <summary>The Front enqueued a campaign (carries its total and idempotency key).</summary>
    [JsonStringEnumMemberName("accepted")]
    Accepted,

    /// <summary>What happened to some recipients of a campaign: delivered, failed, deferred, suppressed.</summary>
    [JsonStringEnumMemberName("progress")]
    Progress,

    /// <summary>Dead-lettered recipients were put back on the work queue by an operator.</summary>
    [JsonStringEnumMemberName("replayed")]
    Replayed,

    /// <summary>An operator paused the campaign: Workers send nothing more of it and keep its work on the broker.</summary>
    [JsonStringEnumMemberName("paused")]
    Paused,

    /// <summary>A paused campaign goes on where it stopped.</summary>
    [JsonStringEnumMemberName("resumed")]
    Resumed,

    /// <summary>What is left of the campaign is dropped; it is never sent.</summary>
    [JsonStringEnumMemberName("cancelled")]
    Cancelled,

    /// <summary>The relay refuses the campaign's sender (MAIL FROM, AUTH, DATA again and again): nothing more is sent until someone resumes it.</summary>
    [JsonStringEnumMemberName("held")]
    Held,

    /// <summary>A Front is about to publish a campaign (one submission of it, its <c>acceptanceId</c>): written and
    /// confirmed before the publish, with the idempotency key, so that a retry finds the submission whatever became of it.</summary>
    [JsonStringEnumMemberName("pending")]
    Pending,

    /// <summary>A Worker took a job of the submission <c>acceptanceId</c>. If this comes before any <c>voided</c> of the
    /// same submission, the submission is live: its jobs are sent.</summary>
    [JsonStringEnumMemberName("started")]
    Started,

    /// <summary>A Front gave up on the submission <c>acceptanceId</c>, not knowing whether the broker had it. If this comes
    /// before any <c>started</c>, the submission is void: whatever of it is on the broker is dropped unsent.</summary>
    [JsonStringEnumMemberName("voided")]
    Voided,

    /// <summary>Written by a process to learn when its tail has read everything before it; carries no fact.</summary>
    [JsonStringEnumMemberName("marker")]
    Marker,
}

/// <param name="Reason">Why a campaign is held: the relay's reply.</param>
/// <param name="AcceptanceId">One submission of the campaign by a Front (<c>pending</c>, <c>accepted</c>, <c>started</c>, <c>voided</c>).</param>
/// <param name="KeyScope">Whose <c>IdempotencyKey</c> it is: derived from the caller's API key, empty without keys.</param>
/// <param name="Subject">On <c>accepted</c>: the campaign's subject template as posted, cut to <see cref="MaxSubjectChars"/>, so
/// that a person can tell campaigns apart; absent from entries written before it was recorded.</param>
/// <param name="From">On <c>accepted</c>: the campaign's From mailbox as a person writes it (<c>News &lt;news@example.com&gt;</c>), cut to <see cref="MaxSubjectChars"/>.</param>
/// <param name="Tenant">On <c>accepted</c>: whose campaign it is, a digest of the API key that posted it (never the key itself);
/// absent when the Front had no keys, and from entries written before tenants were recorded.</param>
/// <summary>One entry of the append-only outcomes stream. Every process folds these into its own <see cref="CampaignLedger"/>.</summary>
/// <remarks>Outcomes of many recipients travel together (one entry per campaign per flush), so the log costs far fewer messages than mails.</remarks>
public sealed record OutcomeEvent(
    OutcomeType Type,
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
    string? Reason = null,
    string? AcceptanceId = null,
    string? KeyScope = null,
    string? Subject = null,
    string? From = null,
    string? Tenant = null)
{
    /// <summary>The most of a subject or sender an <c>accepted</c> entry carries: enough to recognise a campaign.</summary>
    public const int MaxSubjectChars = 200;

    /// <summary>A marker entry with the given id, which travels in the <c>campaignId</c> field.</summary>
    public static OutcomeEvent Marker(string id) => new(OutcomeType.Marker, id, DateTimeOffset.UtcNow);

    /// <summary>A marker's id (the <c>campaignId</c> field on the wire); null for every other entry.</summary>
    [JsonIgnore]
    public string? MarkerId => Type == OutcomeType.Marker ? CampaignId : null;
}

/// <summary>A recipient that will not be mailed, with the relay's last reply; <paramref name="DeadLettered"/> when its retry tiers ran out.</summary>
public sealed record FailedRecipient(int Index, string Email, string Reply, bool DeadLettered = false);

/// <summary>A recipient put on a delay tier after a transient failure.</summary>
public sealed record DeferredRecipient(int Index, int Attempt, string Reason);
