using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Telemetry;
using Bulk.Front.Broker;
using RabbitMQ.Client;

namespace Bulk.Front.DeadLetters;

/// <summary>Moves parked jobs back onto the work queue, each with its delay tiers reset, and says what is parked.</summary>
/// <remarks>
/// Each job moves on its own (published to the work queue and confirmed by the broker, then acked from the parking
/// lot; not an AMQP transaction, which RabbitMQ does not make atomic), marked as replayed: the
/// Worker that takes it reopens its recipients on the outcomes stream (no longer failed) before sending any. So the
/// recipients are reopened only once their job has really moved. Messages that are not jobs stay parked.
/// <para>
/// Only a job whose campaign the ledger knows, and that is not cancelled, moves (<see cref="CampaignLedger.FateOfParked"/>):
/// one of a cancelled campaign is dropped, its recipients staying failed; one of a campaign no ledger knows any more
/// stays parked, since sending it would bring the campaign back as a new one, <c>sending</c> for ever. The ledger is
/// read to now first, so that a cancel or a campaign answered a moment ago counts.
/// </para>
/// </remarks>
public sealed partial class DeadLetterReplay(BrokerConnection broker, OutcomeLog outcomes, ILogger<DeadLetterReplay> logger)
{
    /// <summary>How many parked messages one look at the parking lot reads at most; past it, the answer says it is partial.</summary>
    public const int LookLimit = 10_000;

    private static readonly TimeSpan ReadToNowTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan HandBackPatience = TimeSpan.FromSeconds(10);

    /// <summary>One look or replay at a time: each holds what it read until it is done, which the other would miss.</summary>
    private readonly SemaphoreSlim oneAtATime = new(1, 1);

    public async Task<uint> CountAsync(CancellationToken cancellationToken)
    {
        var connection = await broker.GetAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        return (await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue, cancellationToken)).MessageCount;
    }

    /// <summary>Per campaign, what is parked and since when, and what a replay would do with it; the lot is left as it was.</summary>
    /// <remarks>Each message is taken and held, then all are handed back at once: the broker keeps them, in order.</remarks>
    public async Task<DeadLetterSummary> SummarizeAsync(CancellationToken cancellationToken)
    {
        await oneAtATime.WaitAsync(cancellationToken);
        try
        {
            // The broker first: when it is away, the answer is a 503 at once, not after the ledger's wait.
            var connection = await broker.GetAsync(cancellationToken);
            await ReadLedgerToNowAsync(cancellationToken);
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            var waiting = (await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue, cancellationToken)).MessageCount;
            var campaigns = new Dictionary<string, ParkedCampaignBuilder>(StringComparer.Ordinal);
            int read = 0, unreadable = 0;
            ulong lastTag = 0;
            try
            {
                while (read < Math.Min(waiting, LookLimit)
                    && await channel.BasicGetAsync(broker.Topology.DeadQueue, autoAck: false, cancellationToken) is { } parked)
                {
                    read++;
                    lastTag = parked.DeliveryTag;
                    if (JobMessages.TryRead(parked.Body.Span, out _) is not { } job)
                    {
                        unreadable++;
                        continue;
                    }

                    if (!campaigns.TryGetValue(job.CampaignId, out var campaign))
                    {
                        campaigns[job.CampaignId] = campaign = new ParkedCampaignBuilder(job.CampaignId);
                    }

                    campaign.Add(job.Recipients.Count, ParkedMessages.ParkedAt(parked.BasicProperties), ParkedMessages.Reason(parked.BasicProperties));
                }
            }
            finally
            {
                if (lastTag > 0 && channel.IsOpen)
                {
                    await channel.BasicNackAsync(lastTag, multiple: true, requeue: true, CancellationToken.None);
                    await WaitUntilBackAsync(channel, read);
                }
            }

            var ledger = outcomes.Ledger;
            return new DeadLetterSummary(waiting, read >= waiting,
                [.. campaigns.Values.Select(c => c.Build(ledger.Find(c.CampaignId)?.Status, ledger.FateOfParked(c.CampaignId)))
                    .OrderBy(c => c.OldestParkedAt ?? DateTimeOffset.MinValue).ThenBy(c => c.CampaignId, StringComparer.Ordinal)],
                unreadable);
        }
        finally
        {
            oneAtATime.Release();
        }
    }

    public async Task<ReplayResult> ReplayAsync(CancellationToken cancellationToken)
    {
        await oneAtATime.WaitAsync(cancellationToken);
        try
        {
            var connection = await broker.GetAsync(cancellationToken);
            await ReadLedgerToNowAsync(cancellationToken);
            return await MoveAsync(connection, cancellationToken);
        }
        finally
        {
            oneAtATime.Release();
        }
    }

    private async Task<ReplayResult> MoveAsync(IConnection connection, CancellationToken cancellationToken)
    {
        await using var channel = await connection.CreateChannelAsync(BrokerConnections.ConfirmedChannel, cancellationToken);
        var waiting = (await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue, cancellationToken)).MessageCount;

        int jobs = 0, recipients = 0;
        var cancelled = new ParkedCount(0, 0);
        var forgotten = new ParkedCount(0, 0);
        // What stays parked is held until the end, then handed back: handed back at once, it would be read again.
        var staying = new List<ulong>();
        try
        {
            // Bounded by what was parked when we started: a message that goes back to the lot is not read again.
            for (var i = 0; i < waiting; i++)
            {
                var parked = await channel.BasicGetAsync(broker.Topology.DeadQueue, autoAck: false, cancellationToken);
                if (parked is null)
                {
                    break;
                }

                if (JobMessages.TryRead(parked.Body.Span, out _) is not { } job)
                {
                    staying.Add(parked.DeliveryTag);
                    continue;
                }

                switch (outcomes.Ledger.FateOfParked(job.CampaignId))
                {
                    case ParkedJobFate.KeepParked:
                        staying.Add(parked.DeliveryTag);
                        forgotten = forgotten.Plus(job.Recipients.Count);
                        LogForgotten(job.CampaignId, job.Recipients.Count);
                        continue;
                    case ParkedJobFate.Drop:
                        await channel.BasicAckAsync(parked.DeliveryTag, multiple: false, cancellationToken);
                        cancelled = cancelled.Plus(job.Recipients.Count);
                        LogCancelled(job.CampaignId, job.Recipients.Count);
                        continue;
                }

                var fresh = JobMessages.Serialize(job with { Attempt = 0, Replayed = true });
                // Still its campaign's work: the replayed recipients' mails stay in the campaign's trace.
                var properties = JobMessages.Properties();
                properties.Headers = new Dictionary<string, object?>();
                TraceHeaders.Copy(parked.BasicProperties.Headers, properties.Headers);
                await channel.BasicPublishAsync("", broker.Topology.WorkQueue, mandatory: false, properties, fresh, cancellationToken);
                await channel.BasicAckAsync(parked.DeliveryTag, multiple: false, cancellationToken);
                jobs++;
                recipients += job.Recipients.Count;
            }
        }
        finally
        {
            foreach (var tag in staying.Where(_ => channel.IsOpen))
            {
                await channel.BasicNackAsync(tag, multiple: false, requeue: true, CancellationToken.None);
            }

            if (staying.Count > 0 && channel.IsOpen)
            {
                await WaitUntilBackAsync(channel, staying.Count);
            }

            // Its acks settle before it closes: closing at once can hand the moved jobs back to the lot (AckedChannels).
            await channel.CloseAfterAcksAsync();
        }

        var unreadable = staying.Count - forgotten.Jobs;
        LogReplayed(jobs, recipients, cancelled.Jobs, forgotten.Jobs, unreadable);
        return new ReplayResult(jobs, recipients, unreadable, cancelled, forgotten);
    }

    /// <summary>Waits (a few seconds at most) until the parking lot counts at least <paramref name="handedBack"/> messages again.</summary>
    /// <remarks>
    /// A quorum queue takes back what was handed back a moment after the nack: a replay or a look that came at once
    /// found part of the lot missing (4,608 of 10,000 counted just after a replay that kept them all). Waiting here,
    /// the next call finds it whole. Nothing else takes from the lot, so its count only grows meanwhile.
    /// </remarks>
    private async Task WaitUntilBackAsync(IChannel channel, int handedBack)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while ((await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue)).MessageCount < handedBack && waited.Elapsed < HandBackPatience)
            {
                await Task.Delay(20);
            }
        }
        catch (Exception e) when (e is IOException or RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // The broker has them back or will with the channel: only the next call's view is at stake.
        }
    }

    /// <summary>A cancel or a campaign forgotten a moment ago, on any process, decides what moves.</summary>
    private async Task ReadLedgerToNowAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReadToNowTimeout);
        await outcomes.ReadToNowAsync(timeout.Token);
    }

    private sealed class ParkedCampaignBuilder(string campaignId)
    {
        private int jobs;
        private int recipients;
        private DateTimeOffset? oldest;
        private DateTimeOffset? newest;
        private string? reason;

        public string CampaignId => campaignId;

        public void Add(int count, DateTimeOffset? parkedAt, string? parkedFor)
        {
            jobs++;
            recipients += count;
            if (parkedAt is { } at)
            {
                oldest = oldest is { } o && o <= at ? o : at;
                if (newest is null || at >= newest)
                {
                    newest = at;
                    reason = parkedFor ?? reason;
                }
            }
            else
            {
                reason ??= parkedFor;
            }
        }

        public ParkedCampaign Build(string? status, ParkedJobFate fate) => new(campaignId, jobs, recipients, oldest, newest, reason, status,
            fate switch
            {
                ParkedJobFate.Replay => ParkedCampaign.Replay,
                ParkedJobFate.Drop => ParkedCampaign.Drop,
                _ => ParkedCampaign.Keep,
            });
    }

    [LoggerMessage(LogLevel.Information, "Replayed {Jobs} parked jobs ({Recipients} recipients); dropped {Cancelled} of cancelled campaigns; {Forgotten} of forgotten campaigns and {Unreadable} unreadable messages stay parked")]
    private partial void LogReplayed(int jobs, int recipients, int cancelled, int forgotten, int unreadable);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: a parked job of {Count} recipients stays parked on replay; no ledger knows the campaign any more (History__SummaryDays)")]
    private partial void LogForgotten(string campaignId, int count);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} is cancelled: a parked job of {Count} recipients is dropped on replay, its recipients staying failed")]
    private partial void LogCancelled(string campaignId, int count);
}
