using System.Diagnostics;
using System.Text.Json;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Broker.Suppressions;
using Bulk.Broker.Telemetry;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Worker.Rendering;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Bulk.Worker.Delivery;

/// <summary>Takes jobs from the work queue and acknowledges each only when every recipient in it is accounted for.</summary>
/// <remarks>
/// Whatever a job leaves behind (its split into batches, the recipients to try again, the recipients handed back at
/// shutdown) is published and confirmed by the broker before the job is acknowledged. A Worker that dies before the
/// confirms leaves the job on the queue untouched; after the ack, the job is replaced by its remainder; in between,
/// both are there and the ledger skips what the first copy did. No recipient falls between the two.
/// </remarks>
public sealed partial class DeliveryConsumer(
    BrokerConnections connections,
    IOptions<DeliveryOptions> delivery,
    JobDelivery jobs,
    OutcomeLog outcomes,
    OutcomeRecorder recorder,
    CampaignTemplates templates,
    SuppressionLog suppressions,
    DeliveryObserver observer,
    CampaignTrail trail,
    ILogger<DeliveryConsumer> logger) : BackgroundService
{

    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ReadToNowTimeout = TimeSpan.FromSeconds(60);

    private readonly Topology topology = connections.Topology;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<AcceptanceState>> starting = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<TimeSpan> tiers = delivery.Value.ToRetryTiers();
    private readonly ReadToNowRounds<OutcomeEvent> outcomesToNow = new(outcomes, ReadToNowTimeout);

    /// <summary>How often the jobs waiting in the paused queue are looked at, to move those of resumed campaigns back (<see cref="PausedJobs"/>).</summary>
    public static readonly TimeSpan PauseRecheck = TimeSpan.FromSeconds(2);

    /// <summary>How long a job that met a broker failure is held while moving it aside keeps failing (a leader election takes seconds).</summary>
    private static readonly TimeSpan BrokerTroublePatience = TimeSpan.FromSeconds(30);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Reconnecting.RunAsync(
        ConsumeUntilDisconnectedAsync,
        (reason, delay) => LogBrokerUnavailable(reason, delay.TotalSeconds),
        TimeSpan.FromSeconds(1), MaxReconnectDelay, stoppingToken);

    /// <summary>One connection's life: consume until the broker goes away, or until stopping, then drain.</summary>
    private async Task ConsumeUntilDisconnectedAsync(CancellationToken stopping)
    {
        var prefetch = delivery.Value.Prefetch;
        // The process's consuming connection is shared with the stream tails; this loop owns only its channel, and
        // a new channel after a lost one means a fresh consumer, nothing half recovered.
        await using var channel = await connections.CreateChannelAsync(ConnectionRole.Consume,
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true,
                consumerDispatchConcurrency: prefetch), stopping);
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.ChannelShutdownAsync += (_, _) =>
        {
            lost.TrySetResult();
            return Task.CompletedTask;
        };

        await (await connections.GetAsync(ConnectionRole.Consume, stopping)).DeclareQueuesAsync(topology, tiers, logger, stopping);
        await channel.BasicQosAsync(0, prefetch, global: false, stopping);

        // Know everything already delivered, and every suppressed address, before taking any job.
        await ReadOutcomesToNowAsync(stopping);
        await ReadToNowAsync(suppressions, stopping);

        // Jobs in hand stop taking recipients when the Worker stops or when this connection is lost: a lost
        // connection returns them to the queue, and another consumer must not find them still being worked on.
        using var life = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var confirming = new ConfirmingChannel(channel, observer);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivered) => HandleAsync(confirming, delivered, life.Token);
        // The broker cancels a consumer whose queue lost its replica here (a node of a cluster left): start afresh.
        consumer.UnregisteredAsync += (_, _) =>
        {
            lost.TrySetResult();
            return Task.CompletedTask;
        };
        var consumerTag = await channel.BasicConsumeAsync(topology.WorkQueue, autoAck: false, consumer, stopping);
        // What the broker took off the work queue at its delivery limit is recorded and parked by whichever Worker is up.
        var overLimit = new AsyncEventingBasicConsumer(channel);
        overLimit.ReceivedAsync += (_, delivered) => ParkOverLimitAsync(confirming, delivered, life.Token);
        overLimit.UnregisteredAsync += (_, _) =>
        {
            lost.TrySetResult();
            return Task.CompletedTask;
        };
        var overLimitTag = await channel.BasicConsumeAsync(topology.OverLimitQueue, autoAck: false, overLimit, stopping);
        LogConsuming(topology.WorkQueue, prefetch);

        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (stopping.Register(() => stopped.TrySetResult()))
        {
            await Task.WhenAny(lost.Task, stopped.Task);
        }

        if (lost.Task.IsCompleted)
        {
            await life.CancelAsync();
            // Let the handlers record what they sent (once the broker is back) before a new consumer sees their jobs.
            await confirming.InFlight.WhenIdleAsync().WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            // A consumer the broker cancelled leaves its channel open: what it acked settles before the channel closes.
            await channel.CloseAfterAcksAsync();
            throw new IOException("the consumer of the work queue was lost with its channel or cancelled by the broker");
        }

        // Graceful stop: take no more jobs, let the ones in hand finish or hand back their remainder, then leave.
        await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
        await channel.BasicCancelAsync(overLimitTag, noWait: false, CancellationToken.None);
        await confirming.InFlight.WhenIdleAsync();
        await channel.CloseAfterAcksAsync();
        LogStopped();
    }

    private async Task HandleAsync(ConfirmingChannel channel, BasicDeliverEventArgs delivered, CancellationToken stopping)
    {
        using var _ = channel.InFlight.Enter();
        // A child of the span that published the message: the campaign's trace goes on through the split and each job.
        using var activity = BulkTelemetry.StartProcess(topology.WorkQueue, delivered.BasicProperties);
        DeliveryJob? job = null;
        try
        {
            job = JobMessages.TryRead(delivered.Body.Span, out var unreadable);
            if (job is null)
            {
                activity?.SetStatus(ActivityStatusCode.Error, unreadable);
                await channel.CommitAsync(delivered.DeliveryTag, [(topology.DeadQueue, delivered.Body.ToArray(), unreadable)]);
                LogParked(delivered.BasicProperties.MessageId, unreadable!);
                return;
            }

            using var scope = logger.BeginScope("Campaign {CampaignId}", job.CampaignId);
            activity?.SetTag(BulkTelemetry.CampaignIdTag, job.CampaignId).SetTag("bulk.job.recipients", job.Recipients.Count)
                .SetTag("bulk.job.attempt", job.Attempt);

            if (job.Replayed && await ReplayedJobs.LeftBehindAsync(outcomes, topology, job, logger, stopping) is { } leftBehind)
            {
                activity?.SetTag("bulk.job.dropped", leftBehind.Count == 0 ? "cancelled" : "forgotten");
                await channel.CommitAsync(delivered.DeliveryTag, leftBehind);
                return;
            }

            if (job.AcceptanceId is { } acceptance && !await IsLiveAsync(job.CampaignId, acceptance, stopping))
            {
                // A Front voided the submission before any Worker started it, and told its client nothing was enqueued.
                activity?.SetTag("bulk.job.dropped", "void");
                await channel.CommitAsync(delivered.DeliveryTag, []);
                LogVoidDropped(job.CampaignId, acceptance, job.Recipients.Count);
                return;
            }

            if (JobMessages.DeliveryCount(delivered.BasicProperties) is var count and >= Topology.WorkDeliveryLimit - Topology.WorkDeliveryMargin)
            {
                // Taken this often and never acknowledged, it may be what kills Workers (a split that runs out of
                // memory): parked with its recipients recorded while a delivery or two are left, before the broker
                // takes it off at the limit.
                activity?.SetTag("bulk.job.dropped", "delivery limit");
                await ParkWithReasonAsync(channel, delivered, job, $"delivered {count + 1} times without being acknowledged " +
                    $"(Workers stopped or lost their connection while working on it); parked before the work queue's delivery limit ({Topology.WorkDeliveryLimit})", null, stopping);
                return;
            }

            trail.Started(job.CampaignId, job.Total > 0 ? job.Total : job.Recipients.Count);
            if (job.Recipients.Count > delivery.Value.RecipientsPerJob)
            {
                activity?.SetTag("bulk.job.kind", "split");
                if (activity is not null)
                {
                    activity.DisplayName = "split campaign";
                }

                var total = job.Total > 0 ? job.Total : job.Recipients.Count;
                // The template is written once, and the jobs say where: they carry recipients only.
                var split = job.Template is { } template
                    ? job with { Version = DeliveryJob.ReferenceVersion, Template = null, TemplateAt = await templates.StoreAsync(job.CampaignId, template, stopping) }
                    : job;
                var batches = split.Recipients.Chunk(delivery.Value.RecipientsPerJob).Select(batch => split with { Recipients = batch, Total = total }).ToList();
                await channel.CommitAsync(delivered.DeliveryTag, [.. batches.Select(Outgoing)]);
                LogSplit(job.CampaignId, job.Recipients.Count, batches.Count);
                return;
            }

            // Whoever held this job before, or another copy of it (a commit confirmed but not acked, by a Worker that
            // died or lost its connection), may have delivered part of it: see what they recorded first. A copy is a
            // new message, not a redelivery, so every job reads to now; the jobs taken meanwhile share one marker.
            await outcomesToNow.ReadToNowAsync(stopping);

            if (job.Replayed)
            {
                // Moved back from the parking lot: its recipients stop being failed before any of them is sent.
                await outcomes.RecordAsync([new OutcomeEvent(OutcomeType.Replayed, job.CampaignId, DateTimeOffset.UtcNow, job.Total,
                    Replayed: [.. job.Recipients.Select(r => r.Index)])], stopping);
                job = job with { Replayed = false };
            }

            // A job of a paused or held campaign waits on the broker; one of a cancelled campaign is dropped unsent.
            if (Destination(job.CampaignId) is var elsewhere && elsewhere != topology.WorkQueue)
            {
                await channel.CommitAsync(delivered.DeliveryTag, elsewhere is null ? [] : [(elsewhere, Serialize(job), null)]);
                activity?.SetTag("bulk.job.dropped", elsewhere is null ? "cancelled" : "waits");
                if (elsewhere is null)
                {
                    LogDropped(job.CampaignId, job.Recipients.Count);
                }

                return;
            }

            if (activity is not null)
            {
                activity.DisplayName = "deliver job";
                activity.SetTag("bulk.job.kind", "deliver");
            }

            var outcome = await jobs.DeliverAsync(job, stopping);
            activity?.SetTag("bulk.job.delivered", outcome.Delivered).SetTag("bulk.job.failed", outcome.Failed)
                .SetTag("bulk.job.deferred", outcome.Deferred.Count).SetTag("bulk.job.dead_lettered", outcome.DeadLettered.Count)
                .SetTag("bulk.job.suppressed", outcome.Suppressed).SetTag("bulk.job.skipped", outcome.Skipped)
                .SetTag("bulk.job.returned", outcome.Returned.Count);
            if (outcome.HeldBy is { } reply)
            {
                // Recorded before the remainder is routed, so that it goes where a held campaign's work waits.
                await HoldAsync(job, reply, stopping);
            }

            var remainder = new List<(string, byte[], string?)>(3);
            if (outcome.Returned.Count > 0 && Destination(job.CampaignId) is { } destination)
            {
                remainder.Add((destination, Serialize(job with { Recipients = outcome.Returned }), null));
            }

            if (outcome.Deferred.Count > 0)
            {
                var next = job with { Recipients = outcome.Deferred, Attempt = job.Attempt + 1 };
                remainder.Add((topology.RetryQueue(tiers[job.Attempt]), Serialize(next), null));
            }

            if (outcome.DeadLettered.Count > 0)
            {
                var dead = job with { Recipients = outcome.DeadLettered };
                remainder.Add((topology.DeadQueue, Serialize(dead), $"transient failures outlasted every delay tier; last reply: {outcome.LastReply}"));
            }

            await channel.CommitAsync(delivered.DeliveryTag, remainder);
            LogJobDone(job.CampaignId, job.Recipients.Count, outcome.Delivered, outcome.Failed, outcome.Deferred.Count, outcome.DeadLettered.Count, outcome.Skipped, outcome.Returned.Count);
        }
        catch (Exception e) when (!channel.IsOpen || (e is OperationCanceledException && stopping.IsCancellationRequested))
        {
            // The connection is gone (or going): the job returns to the queue by itself, and its recorded outcomes stand.
            LogHandedBack(delivered.DeliveryTag, e.Message);
        }
        catch (Exception e) when (job is not null && IsBrokerTrouble(e))
        {
            await DelayAsync(channel, delivered, job, e, stopping);
        }
        catch (Exception e)
        {
            await ParkAsync(channel, delivered, job, e, stopping);
        }
    }

    /// <summary>Whether the job's submission is to be sent: live if a Worker's <c>started</c> came first on the outcomes
    /// stream, void if a Front's <c>voided</c> did.</summary>
    /// <remarks>
    /// Settled once, it stays settled. Not settled yet, this Worker writes <c>started</c> and reads the stream to now,
    /// then reads which came first: one round trip per submission and Worker at most (the jobs of a submission that
    /// arrive meanwhile wait for the same one). A broker failure on the way is the caller's broker trouble.
    /// </remarks>
    private async Task<bool> IsLiveAsync(string campaignId, string acceptance, CancellationToken stopping)
    {
        var state = outcomes.Ledger.Acceptance(acceptance);
        if (state == AcceptanceState.Undecided)
        {
            var settling = starting.GetOrAdd(acceptance, _ => StartAsync(campaignId, acceptance, stopping));
            try
            {
                state = await settling;
            }
            finally
            {
                starting.TryRemove(new KeyValuePair<string, Task<AcceptanceState>>(acceptance, settling));
            }
        }

        return state switch
        {
            AcceptanceState.Live => true,
            AcceptanceState.Void => false,
            _ => throw new IOException($"the outcomes stream did not settle submission {acceptance} of campaign {campaignId}"),
        };
    }

    private async Task<AcceptanceState> StartAsync(string campaignId, string acceptance, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(ReadToNowTimeout);
        await outcomes.AppendAndReadToNowAsync([new OutcomeEvent(OutcomeType.Started, campaignId, DateTimeOffset.UtcNow, AcceptanceId: acceptance)], timeout.Token);
        return outcomes.Ledger.Acceptance(acceptance);
    }

    /// <summary>The broker (not the job) failed while the channel still works: the job waits a moment on the broker and
    /// comes back, or, when it was its commit that the broker confirmed only in part, the rest of the commit is tried again.</summary>
    /// <remarks>
    /// <para>
    /// Moving it to the paused queue may fail too while a queue elects a new leader (the broker refuses what it cannot
    /// place): it is tried again for up to <see cref="BrokerTroublePatience"/>, the job held meanwhile. Handing it back
    /// at once instead would have it redelivered at once, over and over, until the work queue's delivery limit parked
    /// it: a campaign that never ends (seen when a node was killed).
    /// </para>
    /// <para>
    /// A commit confirmed in part is not sent round whole: what was confirmed is already where it belongs, and the job
    /// again beside it would make its handed-back recipients exist twice, send its deferred ones again at once (their
    /// delay tier skipped) and keep its dead-lettered ones (recorded as failed already) out of the parking lot. Only
    /// the unconfirmed publishes are tried again, to where they were going, and the job is acked once they are confirmed.
    /// </para>
    /// </remarks>
    private async Task DelayAsync(ConfirmingChannel channel, BasicDeliverEventArgs delivered, DeliveryJob job, Exception error, CancellationToken stopping)
    {
        LogDelayed(job.CampaignId, delivered.DeliveryTag, error.Message);
        Activity.Current?.AddEvent(new ActivityEvent("broker trouble: the job waits", tags: new ActivityTagsCollection { ["exception.message"] = error.Message }));
        var rest = error is JobInterruptedException interrupted ? interrupted.Undecided : job.Recipients;
        IReadOnlyList<(string Queue, byte[] Body, string? DeadReason)> publishes = error is UnconfirmedPublishesException partly
            ? partly.Unconfirmed
            : rest.Count == 0 ? [] : [(topology.PausedQueue, Serialize(job with { Recipients = rest }), null)];
        var pause = TimeSpan.FromMilliseconds(500);
        var deadline = DateTime.UtcNow + BrokerTroublePatience;
        while (true)
        {
            try
            {
                await channel.CommitAsync(delivered.DeliveryTag, publishes);
                return;
            }
            catch (Exception e) when (channel.IsOpen && IsBrokerTrouble(e) && !stopping.IsCancellationRequested && DateTime.UtcNow + pause < deadline)
            {
                if (e is UnconfirmedPublishesException again)
                {
                    publishes = again.Unconfirmed;
                }

                await Task.Delay(pause, CancellationToken.None);
                pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
            catch (Exception e)
            {
                LogParkFailed(delivered.DeliveryTag, e.Message);
                await channel.HandBackAsync(delivered.DeliveryTag);
                return;
            }
        }
    }

    private static bool IsBrokerTrouble(Exception e) =>
        (e is JobInterruptedException { InnerException: { } inner } ? inner : e)
            is IOException or TimeoutException or OperationCanceledException or RabbitMQ.Client.Exceptions.OperationInterruptedException
                or RabbitMQ.Client.Exceptions.PublishException;

    /// <summary>A job that broke off is parked with the reason, and its recipients without an outcome are recorded as failed.</summary>
    private Task ParkAsync(ConfirmingChannel channel, BasicDeliverEventArgs delivered, DeliveryJob? job, Exception error, CancellationToken stopping)
    {
        var reason = $"internal error: {(error is JobInterruptedException ? error.Message : $"{error.GetType().Name}: {error.Message}")}";
        Activity.Current?.SetStatus(ActivityStatusCode.Error, reason);
        LogJobFailed(job?.CampaignId, delivered.DeliveryTag, reason);
        return ParkWithReasonAsync(channel, delivered, job, reason, (error as JobInterruptedException)?.Undecided, stopping);
    }

    /// <summary>A job the broker took off the work queue at its delivery limit: nobody recorded anything for it, so its
    /// recipients without an outcome are recorded as dead-lettered failures here, and it is parked.</summary>
    private async Task ParkOverLimitAsync(ConfirmingChannel channel, BasicDeliverEventArgs delivered, CancellationToken stopping)
    {
        using var _ = channel.InFlight.Enter();
        var job = JobMessages.TryRead(delivered.Body.Span, out var unreadable);
        var reason = $"taken off the work queue by the broker at its delivery limit ({Topology.WorkDeliveryLimit} deliveries without being acknowledged)";
        using var scope = logger.BeginScope("Campaign {CampaignId}", job?.CampaignId);
        LogOverLimit(job?.CampaignId, job?.Recipients.Count ?? 0);
        await ParkWithReasonAsync(channel, delivered, job, job is null ? $"{reason}; {unreadable}" : reason, null, stopping);
    }

    /// <summary>Parks a job with <paramref name="reason"/>, its recipients without an outcome recorded as failed first.</summary>
    /// <param name="undecided">Those of its recipients known to have no outcome, or null to read them from the ledger.</param>
    /// <remarks>
    /// Recorded as dead-lettered failures, so the campaign's counts add up and it reaches a final state; replaying the
    /// parking lot reopens them. A replayed job parked before it reopened anything is parked whole: its recipients are
    /// still recorded as failed, and only a job in the parking lot can bring them back. Should even that fail, the job
    /// goes back to its queue rather than stay unacknowledged.
    /// </remarks>
    private async Task ParkWithReasonAsync(ConfirmingChannel channel, BasicDeliverEventArgs delivered, DeliveryJob? job, string reason,
        IReadOnlyList<JobRecipient>? undecided, CancellationToken stopping)
    {
        try
        {
            if (job is null)
            {
                await channel.CommitAsync(delivered.DeliveryTag, [(topology.DeadQueue, delivered.Body.ToArray(), reason)]);
                LogParked(delivered.BasicProperties.MessageId, reason);
                return;
            }

            if (undecided is null)
            {
                // What was recorded for this job, here or by whoever held it before, must be known before deciding what is left of it.
                await ReadOutcomesToNowAsync(stopping);
                undecided = [.. job.Recipients.Where(r => !outcomes.Ledger.IsDone(job.CampaignId, r.Index))];
            }

            await Task.WhenAll(undecided.Select(r => recorder.FailedAsync(job, new FailedRecipient(r.Index, r.Email, reason, DeadLettered: true))));
            var parked = job.Replayed ? job.Recipients : undecided;
            await channel.CommitAsync(delivered.DeliveryTag,
                parked.Count == 0 ? [] : [(topology.DeadQueue, Serialize(job with { Recipients = parked, Replayed = false }), reason)]);
            LogParked(delivered.BasicProperties.MessageId, reason);
        }
        catch (Exception e)
        {
            LogParkFailed(delivered.DeliveryTag, e.Message);
            await channel.HandBackAsync(delivered.DeliveryTag);
        }
    }

    /// <summary>Holds the campaign on every process: recorded on the stream, and read back here before the remainder is routed.</summary>
    private async Task HoldAsync(DeliveryJob job, string reply, CancellationToken stopping)
    {
        LogHeld(job.CampaignId, reply);
        try
        {
            await outcomes.RecordAsync([new OutcomeEvent(OutcomeType.Held, job.CampaignId, DateTimeOffset.UtcNow, job.Total, Reason: reply)], stopping);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException && !stopping.IsCancellationRequested)
        {
            // The recipients go back to work; the next to meet the refusal holds the campaign.
            LogHoldNotRecorded(job.CampaignId, e.Message);
        }
    }

    private (string Queue, byte[] Body, string? DeadReason) Outgoing(DeliveryJob job) => (topology.WorkQueue, Serialize(job), null);

    /// <summary>Where a campaign's unsent recipients belong: at work, waiting out a pause or hold, or nowhere if it is cancelled.</summary>
    private string? Destination(string campaignId) => outcomes.Ledger.Find(campaignId) switch
    {
        { CancelledAt: not null } => null,
        { Status: CampaignLedger.Statuses.Paused or CampaignLedger.Statuses.Held } => topology.PausedQueue,
        _ => topology.WorkQueue,
    };

    private static byte[] Serialize(DeliveryJob job) => JobMessages.Serialize(job);

    private Task ReadOutcomesToNowAsync(CancellationToken stopping) => ReadToNowAsync(outcomes, stopping);

    private static async Task ReadToNowAsync<T>(EventStream<T> stream, CancellationToken stopping)
        where T : class
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(ReadToNowTimeout);
        await stream.ReadToNowAsync(timeout.Token);
    }

    /// <summary>The consuming channel with publisher confirms: what a job leaves behind is confirmed by the broker before the job is acknowledged.</summary>
    /// <remarks>
    /// Not an AMQP transaction: RabbitMQ's transactions batch, they are not atomic, and one whose target queue's leader
    /// died mid-commit was seen to apply the ack and lose the publish (jobs gone, every queue empty). Confirms are
    /// at least once instead: a Worker or connection that dies between the confirms and the ack leaves both the job
    /// and what it left behind on the queue; the recipients of the second copy that are already done are skipped by
    /// the ledger. Jobs in hand commit independently of each other.
    /// </remarks>
    private sealed class ConfirmingChannel(IChannel channel, DeliveryObserver observer)
    {
        private static readonly TimeSpan HandBackDelay = TimeSpan.FromSeconds(1);

        /// <summary>How long a commit waits for the broker's confirms before it counts as a broker failure.</summary>
        private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(30);

        public InFlightCounter InFlight { get; } = new();

        public bool IsOpen => channel.IsOpen;

        /// <exception cref="UnconfirmedPublishesException">Some publishes were nacked or not confirmed in time, the channel
        /// still open: the job is not acknowledged, and those confirmed are not to be published again.</exception>
        public async Task CommitAsync(ulong deliveryTag, IReadOnlyList<(string Queue, byte[] Body, string? DeadReason)> publishes)
        {
            observer.Step(DeliveryStep.Commit);
            using var timeout = new CancellationTokenSource(ConfirmTimeout);
            // All published at once, then every confirm awaited: one round trip for a split of any size.
            var confirms = publishes.Select(p => channel.BasicPublishAsync(exchange: "", routingKey: p.Queue, mandatory: false,
                basicProperties: JobMessages.Properties(p.DeadReason).WithTraceContext(), body: p.Body, timeout.Token).AsTask()).ToList();
            try
            {
                await Task.WhenAll(confirms);
            }
            catch (Exception e) when (channel.IsOpen)
            {
                throw new UnconfirmedPublishesException([.. publishes.Where((_, i) => !confirms[i].IsCompletedSuccessfully)], publishes.Count, e);
            }

            await channel.BasicAckAsync(deliveryTag, multiple: false);
        }

        /// <summary>The last resort for a job that can be neither finished nor parked: back to the queue, or, failing that, the channel closes.</summary>
        /// <remarks>Either way the broker redelivers it, and its delivery limit parks it in the end; it never stays unacknowledged.</remarks>
        public async Task HandBackAsync(ulong deliveryTag)
        {
            try
            {
                // Not at once: a job handed back in a loop would use up the work queue's delivery limit in moments.
                await Task.Delay(HandBackDelay);
                await channel.BasicNackAsync(deliveryTag, multiple: false, requeue: true);
            }
            catch (Exception) when (channel.IsOpen)
            {
                await channel.CloseAsync(Constants.ReplySuccess, "a job could be neither finished nor handed back");
            }
            catch (Exception)
            {
                // Closed already: the broker has the job back.
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Consuming {Queue} with prefetch {Prefetch}")]
    private partial void LogConsuming(string queue, ushort prefetch);

    [LoggerMessage(LogLevel.Warning, "RabbitMQ unavailable ({Reason}); reconnecting in {Seconds} s")]
    private partial void LogBrokerUnavailable(string reason, double seconds);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId}: {Count} recipients split into {Jobs} jobs")]
    private partial void LogSplit(string campaignId, int count, int jobs);

    [LoggerMessage(LogLevel.Debug, "Campaign {CampaignId}: job of {Count} done: {Delivered} delivered, {Failed} failed, {Deferred} deferred, {Dead} dead-lettered, {Skipped} already done, {Returned} handed back")]
    private partial void LogJobDone(string campaignId, int count, int delivered, int failed, int deferred, int dead, int skipped, int returned);

    [LoggerMessage(LogLevel.Error, "Message {MessageId} parked in the dead queue: {Reason}")]
    private partial void LogParked(string? messageId, string reason);

    [LoggerMessage(LogLevel.Warning, "Job {DeliveryTag} goes back to the queue with the lost connection: {Reason}")]
    private partial void LogHandedBack(ulong deliveryTag, string reason);

    [LoggerMessage(LogLevel.Error, "A job of campaign {CampaignId} (delivery {DeliveryTag}) broke off and is parked: {Reason}")]
    private partial void LogJobFailed(string? campaignId, ulong deliveryTag, string reason);

    [LoggerMessage(LogLevel.Warning, "A job of campaign {CampaignId} (delivery {DeliveryTag}) met a broker failure and waits to be tried again: {Reason}")]
    private partial void LogDelayed(string campaignId, ulong deliveryTag, string reason);

    [LoggerMessage(LogLevel.Error, "Job {DeliveryTag} could not be parked ({Reason}); it goes back to the queue")]
    private partial void LogParkFailed(ulong deliveryTag, string reason);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} is held: the relay refused its sender ({Reply})")]
    private partial void LogHeld(string campaignId, string reply);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} could not be recorded as held ({Reason}); its recipients go back to work")]
    private partial void LogHoldNotRecorded(string campaignId, string reason);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} is cancelled: dropped a job of {Count} recipients unsent")]
    private partial void LogDropped(string campaignId, int count);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: dropped a job of {Count} recipients unsent, its submission {AcceptanceId} being void (the Front that published it voided it before any Worker started it)")]
    private partial void LogVoidDropped(string campaignId, string acceptanceId, int count);

    [LoggerMessage(LogLevel.Error, "A job of campaign {CampaignId} ({Count} recipients) was taken off the work queue by the broker at its delivery limit; its recipients are recorded as failed and it is parked")]
    private partial void LogOverLimit(string? campaignId, int count);

    [LoggerMessage(LogLevel.Information, "Stopped consuming; every job in hand was finished or handed back")]
    private partial void LogStopped();
}
