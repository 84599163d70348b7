using System.Text.Json;

namespace Bulk.Contracts;

/// <param name="Attempt">How many delay tiers these recipients have been through.</param>
/// <param name="Total">Recipients in the whole campaign, so any outcome can be counted against it.</param>
/// <param name="Replayed">Moved back from the parking lot by an operator: the Worker that takes it first records its recipients as reopened (no longer failed), then sends.</param>
/// <param name="AcceptanceId">The Front's submission this job comes from. A Worker sends it only if the stream records
/// that submission as started before anyone voided it; a job without one (an earlier version's) is always sent.</param>
/// <summary>One unit of work on the broker: a campaign's message template and some of its recipients.</summary>
/// <remarks>
/// The Front publishes a whole campaign as one job, so that a campaign is on the broker entirely or not at all.
/// A Worker splits a job that carries more than its batch size into smaller jobs (confirmed by the broker before the
/// parent is acked), and later re-enqueues the recipients it could not finish. Every job is self-contained:
/// any Worker can deliver it without asking anyone else.
/// </remarks>
public sealed record DeliveryJob(
    int Version,
    string CampaignId,
    MessageTemplate Template,
    IReadOnlyList<JobRecipient> Recipients,
    int Attempt = 0,
    int Total = 0,
    bool Replayed = false,
    string? AcceptanceId = null)
{
    /// <summary>The only job format this code reads and writes.</summary>
    public const int CurrentVersion = 1;
}

/// <summary>The message every recipient of a campaign receives, before personalization.</summary>
/// <param name="Bounce">The envelope sender (MAIL FROM) bounces go to; the From address when null.</param>
/// <param name="Verp">Give each recipient its own bounce address, <c>local+{campaign}-{recipient index}@domain</c>.</param>
public sealed record MessageTemplate(
    string From,
    string Subject,
    string? Text,
    string? Html,
    IReadOnlyDictionary<string, string>? Headers = null,
    string? Bounce = null,
    bool Verp = false);

/// <summary>A recipient with its position in the campaign as posted, and its placeholder data.</summary>
public sealed record JobRecipient(int Index, string Email, IReadOnlyDictionary<string, JsonElement>? Data = null);
