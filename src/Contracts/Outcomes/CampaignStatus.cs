namespace Bulk.Contracts.Outcomes;

/// <summary>A campaign's state as the outcomes stream tells it.</summary>
/// <param name="HeldReason">While the campaign is held: the relay's reply that refused its sender.</param>
/// <param name="ResumedAt">When it was last resumed: a Worker gives the relay a fresh try for it, even where the sender's circuit is open.</param>
/// <param name="Subject">The subject template as posted (cut to 200 characters); null for a campaign accepted before it was recorded.</param>
/// <param name="From">The From mailbox (<c>News &lt;news@example.com&gt;</c>); null for a campaign accepted before it was recorded.</param>
public sealed record CampaignStatus(
    string Id,
    string Status,
    int Total,
    int Delivered,
    int Failed,
    int Deferred,
    int Pending,
    DateTimeOffset? CreatedAt,
    DateTimeOffset? FirstDeliveryAt,
    DateTimeOffset? CompletedAt,
    double RatePerSecond,
    DateTimeOffset? CancelledAt = null,
    long Version = 0,
    int Suppressed = 0,
    string? HeldReason = null,
    DateTimeOffset? HeldAt = null,
    DateTimeOffset? ResumedAt = null,
    string? Subject = null,
    string? From = null)
{
    /// <summary>Nothing more will happen to it: every recipient is done, or it was cancelled.</summary>
    public bool IsFinished => CompletedAt is not null || CancelledAt is not null;
}
