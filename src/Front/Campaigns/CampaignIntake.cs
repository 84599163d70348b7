using System.Diagnostics;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Telemetry;
using Bulk.Contracts.Outcomes;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Bulk.Front.Campaigns;

/// <summary>What became of a submitted campaign.</summary>
public abstract record IntakeResult
{
    private IntakeResult()
    {
    }

    /// <summary>Enqueued, and its acceptance recorded on the outcomes stream.</summary>
    public sealed record Accepted(string CampaignId, int Total, int DuplicatesDropped) : IntakeResult;

    /// <summary>The same body came before with the same <c>Idempotency-Key</c>: nothing more was enqueued.</summary>
    /// <param name="Status">The earlier campaign's status, when this Front knows it.</param>
    public sealed record Replayed(string CampaignId, string? Status, int Total, int DuplicatesDropped) : IntakeResult;

    /// <summary>The <c>Idempotency-Key</c> came before with another body.</summary>
    public sealed record KeyReused(string Key, string CampaignId) : IntakeResult;

    /// <summary>The broker was away or did not confirm in time: nothing was enqueued (or what was is void, never to be sent).</summary>
    public sealed record Unavailable : IntakeResult;

    /// <summary>The broker went away while the campaign may have been on it, and the Front could not settle which:
    /// a retry with the same <c>Idempotency-Key</c> settles it.</summary>
    /// <param name="Keyed">The request had an <c>Idempotency-Key</c>.</param>
    public sealed record Unknown(string CampaignId, bool Keyed) : IntakeResult;

    /// <summary>The campaign, as one broker message, is larger than the broker takes: nothing was enqueued.</summary>
    /// <param name="Bytes">The message's size.</param>
    /// <param name="BrokerSaid">The broker's refusal, when it was the broker that refused (the setting is above its limit).</param>
    public sealed record TooLarge(int Bytes, int Limit, string? BrokerSaid) : IntakeResult;
}

/// <summary>Puts a valid campaign on the broker once, whichever Front its retries reach, and records that it was accepted.</summary>
/// <remarks>
/// Each submission has an acceptance id, which its job carries. A Worker sends a job only once the outcomes stream
/// records its submission <c>started</c> (or <c>accepted</c>) before any <c>voided</c>; a Front that cannot tell whether
/// the broker has a campaign (the confirm did not come, the connection dropped mid-publish), or cannot record its
/// <c>accepted</c>, writes <c>voided</c> and reads which came first. A 202 is answered only once <c>accepted</c> is on
/// the stream. Every process reads the stream in the same order, so a submission is live everywhere or void everywhere.
/// Under an <c>Idempotency-Key</c>, a <c>pending</c> entry is confirmed before the publish, and the campaign id comes
/// from the caller and the key, so a retry finds the submissions before it: it answers for a live one, settles an
/// undecided one, and publishes again only when every earlier one is void. Two live submissions of one key cannot be.
/// </remarks>
public sealed partial class CampaignIntake(
    CampaignPublisher publisher, IdempotencyKeyLock keyLock, OutcomeLog outcomes, IntakeObserver observer, IOptions<FrontOptions> options,
    IOptions<RabbitMqOptions> rabbitMq, ILogger<CampaignIntake> logger)
{
    public async Task<IntakeResult> SubmitAsync(PostedCampaign.Valid campaign)
    {
        var acceptance = Guid.NewGuid().ToString("N");
        var job = campaign.Job with { AcceptanceId = acceptance };
        // Every log line about this campaign carries its id, and the request's span says which campaign it made.
        using var scope = logger.BeginScope("Campaign {CampaignId}", job.CampaignId);
        Activity.Current?.SetTag(BulkTelemetry.CampaignIdTag, job.CampaignId).SetTag("bulk.campaign.recipients", job.Recipients.Count);
        // The campaign goes on the broker as one message, so it can never be half enqueued; the broker's
        // max_message_size is then the largest campaign, and one above it is refused before anything else.
        var body = JobMessages.Serialize(job);
        if (body.Length > rabbitMq.Value.MaxMessageBytes)
        {
            return new IntakeResult.TooLarge(body.Length, rabbitMq.Value.MaxMessageBytes, null);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        KeyLease? lease = null;
        // True once a failure no longer means "nothing was enqueued": an earlier submission of the key may be live, or
        // this one is on the wire.
        var atStake = EarlierMayBeLive(campaign);
        var publishing = false;
        try
        {
            if (campaign.IdempotencyKey is { } key)
            {
                // The campaign id is the caller's and the key's: the lock is on it, so on the key within its scope.
                lease = await keyLock.AcquireAsync(job.CampaignId, timeout.Token);
                // Any Front may have taken this key before: read the stream up to now before deciding.
                await outcomes.ReadToNowAsync(timeout.Token);
                atStake = EarlierMayBeLive(campaign);
                if (await EarlierAsync(campaign, key, timeout.Token) is { } earlier)
                {
                    return earlier;
                }

                // Confirmed before the publish: whatever happens next, a retry finds this submission.
                await outcomes.AppendAsync([Entry(OutcomeType.Pending, campaign, acceptance)], timeout.Token);
            }

            publishing = atStake = true;
            // Under a key, on the lock's own connection: if that died, the lock died with it, and so does this publish.
            await publisher.PublishAsync(job, body, lease?.Connection, timeout.Token);
            await observer.ConfirmedAsync(job.CampaignId);
            await RecordAcceptedAsync(Entry(OutcomeType.Accepted, campaign, acceptance));
        }
        catch (MessageTooLargeException e)
        {
            return new IntakeResult.TooLarge(body.Length, rabbitMq.Value.MaxMessageBytes, e.Message);
        }
        catch (NotPublishedException)
        {
            // The broker was not reached, so this submission is not on it; nor is an earlier one of its key, since it
            // was published only once every earlier one was void. Its pending entry waits for a retry to void it.
            return new IntakeResult.Unavailable();
        }
        catch (Exception e) when (e is BrokerUnavailableException or IOException or OperationCanceledException)
        {
            // The reason names the broker's host and port: it is logged where it arose, and the client is told no more.
            return !atStake ? new IntakeResult.Unavailable()
                : publishing ? await SettleAsync(campaign, acceptance)
                : Unknown(campaign, e);
        }
        finally
        {
            if (lease is not null)
            {
                await lease.DisposeAsync();
            }
        }

        LogAccepted(job.CampaignId, job.Recipients.Count, campaign.DuplicatesDropped, Activity.Current?.TraceId.ToString());
        return new IntakeResult.Accepted(job.CampaignId, job.Recipients.Count, campaign.DuplicatesDropped);
    }

    /// <summary>The answer the key's earlier submissions give, if any; null when there are none or every one is void.</summary>
    private async Task<IntakeResult?> EarlierAsync(PostedCampaign.Valid campaign, string key, CancellationToken cancellationToken)
    {
        var ledger = outcomes.Ledger;
        if (ledger.FindKey(campaign.KeyScope, key) is not { } record)
        {
            return null;
        }

        if (record.Accepted is { } accepted)
        {
            return accepted.RequestHash == campaign.Hash
                ? new IntakeResult.Replayed(accepted.CampaignId, ledger.Find(accepted.CampaignId)?.Status, accepted.Total, accepted.DuplicatesDropped)
                : new IntakeResult.KeyReused(key, accepted.CampaignId);
        }

        var undecided = record.Submissions.Where(s => s.State == AcceptanceState.Undecided).ToList();
        if (undecided.Count > 0)
        {
            // Whatever Workers have started stays live; the rest is void from here on, on every process.
            await outcomes.AppendAndReadToNowAsync([.. undecided.Select(s => Voided(s.Request.CampaignId, s.Request.AcceptanceId!))], cancellationToken);
            record = ledger.FindKey(campaign.KeyScope, key)!;
            if (record.Submissions.Any(s => s.State == AcceptanceState.Undecided))
            {
                throw new IOException("the outcomes stream did not settle an earlier submission");
            }
        }

        if (record.Submissions.FirstOrDefault(s => s.State == AcceptanceState.Live)?.Request is not { } live)
        {
            return null; // nothing of the key was ever sent, nor ever will be: this submission is the campaign
        }

        if (live.RequestHash != campaign.Hash)
        {
            return new IntakeResult.KeyReused(key, live.CampaignId);
        }

        // The first try reached the broker and a Worker took it, but no Front answered for it: this answer is its.
        await RecordAcceptedAsync(new OutcomeEvent(OutcomeType.Accepted, live.CampaignId, DateTimeOffset.UtcNow, live.Total, key, live.RequestHash,
            DuplicatesDropped: live.DuplicatesDropped, AcceptanceId: live.AcceptanceId, KeyScope: campaign.KeyScope,
            Subject: Clip(campaign.Job.Template!.Subject), From: Clip(Sender(campaign.Job.Template!.From)), Tenant: TenantOf(campaign)));
        LogFoundLive(live.CampaignId, live.AcceptanceId);
        return new IntakeResult.Replayed(live.CampaignId, ledger.Find(live.CampaignId)?.Status, live.Total, live.DuplicatesDropped);
    }

    /// <summary>The publish, or the write of its acceptance, failed after the campaign may have reached the broker: void
    /// the submission, unless a Worker started it (or its acceptance landed) first.</summary>
    private async Task<IntakeResult> SettleAsync(PostedCampaign.Valid campaign, string acceptance)
    {
        var id = campaign.Job.CampaignId;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        try
        {
            await outcomes.AppendAndReadToNowAsync([Voided(id, acceptance)], timeout.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return Unknown(campaign, e);
        }

        switch (outcomes.Ledger.Acceptance(acceptance))
        {
            case AcceptanceState.Void:
                LogVoided(id, acceptance);
                return new IntakeResult.Unavailable();
            case AcceptanceState.Live when outcomes.Ledger.Find(id) is { CreatedAt: not null }:
                // The acceptance whose confirm was lost had landed, before the voided entry: it stands.
                LogAcceptedAfterAll(id, acceptance);
                return new IntakeResult.Accepted(id, campaign.Job.Recipients.Count, campaign.DuplicatesDropped);
            case AcceptanceState.Live:
                try
                {
                    await RecordAcceptedAsync(Entry(OutcomeType.Accepted, campaign, acceptance));
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    // Sent, but not accepted on the stream: no 202 (see RecordAcceptedAsync).
                    return Unknown(campaign, e);
                }

                LogFoundLive(id, acceptance);
                return new IntakeResult.Accepted(id, campaign.Job.Recipients.Count, campaign.DuplicatesDropped);
            default:
                return Unknown(campaign, new IOException("the outcomes stream did not settle the submission"));
        }
    }

    /// <summary>A submission of the campaign's key that this Front knows of is live or not settled yet.</summary>
    private bool EarlierMayBeLive(PostedCampaign.Valid campaign) =>
        campaign.IdempotencyKey is { } key && outcomes.Ledger.FindKey(campaign.KeyScope, key) is { } known
        && known.Submissions.Any(s => s.State != AcceptanceState.Void);

    private IntakeResult.Unknown Unknown(PostedCampaign.Valid campaign, Exception e)
    {
        LogUnknown(campaign.Job.CampaignId, e.Message);
        return new IntakeResult.Unknown(campaign.Job.CampaignId, campaign.IdempotencyKey is not null);
    }

    // Only the accepted entry says what the campaign is: a pending one is not a campaign anyone lists yet.
    private static OutcomeEvent Entry(OutcomeType type, PostedCampaign.Valid campaign, string acceptance) =>
        new(type, campaign.Job.CampaignId, DateTimeOffset.UtcNow, campaign.Job.Recipients.Count, campaign.IdempotencyKey, campaign.Hash,
            DuplicatesDropped: campaign.DuplicatesDropped, AcceptanceId: acceptance,
            KeyScope: campaign.IdempotencyKey is null ? null : campaign.KeyScope,
            Subject: type == OutcomeType.Accepted ? Clip(campaign.Job.Template!.Subject) : null,
            From: type == OutcomeType.Accepted ? Clip(Sender(campaign.Job.Template!.From)) : null,
            Tenant: type == OutcomeType.Accepted ? TenantOf(campaign) : null);

    /// <summary>Whose campaign it is: the caller's API key's digest, the same as its idempotency scope; none without keys.</summary>
    private static string? TenantOf(PostedCampaign.Valid campaign) => campaign.KeyScope.Length > 0 ? campaign.KeyScope : null;

    /// <summary>The sender as a person writes it, <c>News &lt;news@example.com&gt;</c>: the header's form quotes every name.</summary>
    internal static string Sender(string from) =>
        MailboxAddress.TryParse(from, out var mailbox)
            ? string.IsNullOrWhiteSpace(mailbox.Name) ? mailbox.Address : $"{mailbox.Name} <{mailbox.Address}>"
            : from;

    /// <summary>At most <see cref="OutcomeEvent.MaxSubjectChars"/> characters, never half a surrogate pair.</summary>
    internal static string Clip(string text)
    {
        if (text.Length <= OutcomeEvent.MaxSubjectChars)
        {
            return text;
        }

        // One character is left for the ellipsis that says the text goes on.
        var end = OutcomeEvent.MaxSubjectChars - 1;
        if (char.IsHighSurrogate(text[end - 1]))
        {
            end--;
        }

        return string.Concat(text.AsSpan(0, end), "…");
    }

    private static OutcomeEvent Voided(string campaignId, string acceptance) =>
        new(OutcomeType.Voided, campaignId, DateTimeOffset.UtcNow, AcceptanceId: acceptance);

    /// <summary>The campaign is enqueued; the stream entry makes its total and key known to every process.</summary>
    /// <remarks>
    /// A 202 promises that entry: without it other Fronts answer 404 and know neither the total nor the key. So the
    /// write is tried again for up to <see cref="FrontOptions.PublishTimeoutSeconds"/>, and nothing is applied to this
    /// Front's memory that the stream does not have (this Front alone would then know a campaign, and a later entry
    /// could be applied before it). Should it still fail, the caller settles the submission as for a publish that
    /// failed: it writes <c>voided</c>, and a 503 says that nothing will be sent, unless a Worker started it first.
    /// </remarks>
    /// <exception cref="IOException">The entry was not confirmed in time; it may still land.</exception>
    /// <exception cref="OperationCanceledException">The time was up before a confirm.</exception>
    private async Task RecordAcceptedAsync(OutcomeEvent accepted)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        var pause = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await outcomes.RecordAsync([accepted], timeout.Token);
                return;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                LogAcceptedNotRecorded(accepted.CampaignId, attempt, e.Message);
                if (timeout.IsCancellationRequested || attempt == MaxAcceptedAttempts)
                {
                    throw;
                }
            }

            await Task.Delay(pause, timeout.Token);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
        }
    }

    /// <summary>Bounds the tries of <see cref="RecordAcceptedAsync"/> when each fails at once (no broker to reach).</summary>
    private const int MaxAcceptedAttempts = 20;

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} accepted with {Count} recipients ({Duplicates} duplicates dropped), trace {TraceId}")]
    private partial void LogAccepted(string campaignId, int count, int duplicates, string? traceId);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} is enqueued but its acceptance was not recorded (attempt {Attempt}): {Reason}")]
    private partial void LogAcceptedNotRecorded(string campaignId, int attempt, string reason);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: submission {AcceptanceId} had reached the broker and a Worker started it; it is accepted")]
    private partial void LogFoundLive(string campaignId, string? acceptanceId);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: submission {AcceptanceId}'s acceptance had landed though its confirm was lost; it is accepted")]
    private partial void LogAcceptedAfterAll(string campaignId, string acceptanceId);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: submission {AcceptanceId} is void; whatever of it reached the broker will be dropped unsent")]
    private partial void LogVoided(string campaignId, string acceptanceId);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} may or may not be enqueued, and the outcomes stream could not settle it: {Reason}")]
    private partial void LogUnknown(string campaignId, string reason);
}
