using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Microsoft.Extensions.Options;

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

    /// <summary>The broker was away or did not confirm in time: nothing was enqueued.</summary>
    public sealed record Unavailable : IntakeResult;

    /// <summary>The campaign, as one broker message, is larger than the broker takes: nothing was enqueued.</summary>
    /// <param name="Bytes">The message's size.</param>
    /// <param name="BrokerSaid">The broker's refusal, when it was the broker that refused (the setting is above its limit).</param>
    public sealed record TooLarge(int Bytes, int Limit, string? BrokerSaid) : IntakeResult;
}

/// <summary>Puts a valid campaign on the broker once, whichever Front its retries reach, and records that it was accepted.</summary>
public sealed partial class CampaignIntake(
    CampaignPublisher publisher, IdempotencyKeyLock keyLock, OutcomeLog outcomes, IOptions<FrontOptions> options,
    IOptions<RabbitMqOptions> rabbitMq, ILogger<CampaignIntake> logger)
{
    public async Task<IntakeResult> SubmitAsync(PostedCampaign.Valid campaign)
    {
        var job = campaign.Job;
        // The campaign goes on the broker as one message, so it can never be half enqueued; the broker's
        // max_message_size is then the largest campaign, and one above it is refused before anything else.
        var body = JobMessages.Serialize(job);
        if (body.Length > rabbitMq.Value.MaxMessageBytes)
        {
            return new IntakeResult.TooLarge(body.Length, rabbitMq.Value.MaxMessageBytes, null);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        KeyLease? lease = null;
        try
        {
            if (campaign.IdempotencyKey is { } key)
            {
                lease = await keyLock.AcquireAsync(key, timeout.Token);
                // Any Front may have taken this key before: read the stream up to now before deciding.
                await outcomes.ReadToNowAsync(timeout.Token);
                if (outcomes.Ledger.FindKey(key) is { } earlier)
                {
                    return earlier.RequestHash == campaign.Hash
                        ? new IntakeResult.Replayed(earlier.CampaignId, outcomes.Ledger.Find(earlier.CampaignId)?.Status, earlier.Total, earlier.DuplicatesDropped)
                        : new IntakeResult.KeyReused(key, earlier.CampaignId);
                }
            }

            // Under a key, on the lock's own connection: if that died, the lock died with it, and so does this publish.
            await publisher.PublishAsync(job, body, lease?.Connection);
            await RecordAcceptedAsync(new OutcomeEvent(OutcomeType.Accepted, job.CampaignId, DateTimeOffset.UtcNow, job.Recipients.Count,
                campaign.IdempotencyKey, campaign.Hash, DuplicatesDropped: campaign.DuplicatesDropped));
        }
        catch (MessageTooLargeException e)
        {
            return new IntakeResult.TooLarge(body.Length, rabbitMq.Value.MaxMessageBytes, e.Message);
        }
        catch (Exception e) when (e is BrokerUnavailableException or IOException or OperationCanceledException)
        {
            // The reason names the broker's host and port: it is logged where it arose, and the client is told no more.
            return new IntakeResult.Unavailable();
        }
        finally
        {
            if (lease is not null)
            {
                await lease.DisposeAsync();
            }
        }

        LogAccepted(job.CampaignId, job.Recipients.Count, campaign.DuplicatesDropped);
        return new IntakeResult.Accepted(job.CampaignId, job.Recipients.Count, campaign.DuplicatesDropped);
    }

    /// <summary>The campaign is enqueued; the stream entry makes its total and key known to every process.</summary>
    private async Task RecordAcceptedAsync(OutcomeEvent accepted)
    {
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            try
            {
                await outcomes.RecordAsync([accepted], CancellationToken.None);
                return;
            }
            catch (IOException e)
            {
                LogAcceptedNotRecorded(accepted.CampaignId, attempt, e.Message);
            }
        }

        // The work is on the broker and will be delivered: the client's answer is still 202, and this Front knows the
        // campaign. Elsewhere its status appears with the first outcome; only a retry with the same key elsewhere
        // could not be recognised.
        outcomes.Ledger.Apply(accepted);
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} accepted with {Count} recipients ({Duplicates} duplicates dropped)")]
    private partial void LogAccepted(string campaignId, int count, int duplicates);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} is enqueued but its acceptance was not recorded (attempt {Attempt}): {Reason}")]
    private partial void LogAcceptedNotRecorded(string campaignId, int attempt, string reason);
}
