using System.Text.Json;

namespace Bulk.Contracts;

/// <param name="Attempt">How many delay tiers these recipients have been through.</param>
/// <param name="Total">Recipients in the whole campaign, so any outcome can be counted against it.</param>
/// <param name="Replayed">Moved back from the parking lot by an operator: the Worker that takes it first records its recipients as reopened (no longer failed), then sends.</param>
/// <param name="AcceptanceId">The Front's submission this job comes from. A Worker sends it only if the stream records
/// that submission as started before anyone voided it; a job without one (an earlier version's) is always sent.</param>
/// <param name="Template">The message, in the job itself: the whole campaign as the Front publishes it, and a job
/// split from it by an earlier version. Null when <paramref name="TemplateAt"/> says where it is.</param>
/// <param name="TemplateAt">Where the campaign's message is kept once for all its jobs (the templates stream): what a
/// Worker's split writes, so that a large template is not copied into every job.</param>
/// <summary>One unit of work on the broker: a campaign's message template, or where it is, and some of its recipients.</summary>
/// <remarks>
/// The Front publishes a whole campaign as one job, so that a campaign is on the broker entirely or not at all.
/// A Worker splits a job that carries more than its batch size into smaller jobs (confirmed by the broker before the
/// parent is acked), and later re-enqueues the recipients it could not finish. The split stores the template once, on
/// the templates stream, and its jobs carry where it is: any Worker can deliver any job with what the broker holds.
/// </remarks>
public sealed record DeliveryJob(
    int Version,
    string CampaignId,
    MessageTemplate? Template,
    IReadOnlyList<JobRecipient> Recipients,
    int Attempt = 0,
    int Total = 0,
    bool Replayed = false,
    string? AcceptanceId = null,
    TemplateRef? TemplateAt = null)
{
    /// <summary>A job that carries its template.</summary>
    public const int CurrentVersion = 1;

    /// <summary>A job that says where its template is (<see cref="TemplateAt"/>); earlier versions cannot read it.</summary>
    public const int ReferenceVersion = 2;
}

/// <summary>Where a campaign's message template is on the templates stream: the entry's offset, and the id it carries
/// (an entry at that offset with another id means the template is gone: retention, or a stream declared anew).</summary>
public sealed record TemplateRef(string Id, long Offset);

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
