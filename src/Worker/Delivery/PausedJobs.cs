using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using RabbitMQ.Client;

namespace Bulk.Worker.Delivery;

/// <summary>Moves the jobs waiting in <see cref="Topology.PausedQueue"/> back to work once their campaign is no longer
/// paused or held (or was cancelled: the consumer then drops them), looked at every <see cref="DeliveryConsumer.PauseRecheck"/>.</summary>
/// <remarks>
/// The paused queue has no TTL and no dead-lettering: dead-lettering out of a quorum queue was found to lose its way
/// after a node of a cluster died (RabbitMQ 3.10's at-least-once dead-letter worker may fail to re-register on the new
/// leader, and the jobs then sit in the queue, neither ready nor deliverable: a paused campaign never resumed). Here a
/// Worker takes the jobs itself, in rounds: a job whose campaign may go on is published to the work queue, one still
/// waiting to the back of the paused queue, and only once the broker has confirmed every copy are the jobs taken
/// acknowledged. A Worker that dies mid-round leaves the jobs where they were; one that dies between the confirms and
/// the ack leaves a second copy, whose done recipients the ledger skips (not an AMQP transaction: RabbitMQ's are not
/// atomic, and one was seen to lose its publishes when a queue's leader died). One Worker at a time moves jobs: the one
/// holding an exclusive lock queue; when it goes, another takes over at its next round.
///
/// A pass over the queue costs a publish and an ack per job, so a pass is made only when it can move something: when
/// a campaign was resumed or cancelled since the last pass (<see cref="CampaignLedger.Releases"/>), when jobs came
/// in since (the queue holds more than the last pass left; a broker failure's delayed job, or a remainder routed by a
/// Worker that had not yet seen the resume), when a job the last pass left waiting for its campaign's first entry may
/// now go (its <c>accepted</c> arrived, or its submission was settled), and otherwise once every
/// <see cref="FullPassInterval"/> as a safeguard. A broker failure while a Worker starts or splits a new campaign can
/// park its job here before the Front's <c>accepted</c> reaches this Worker: it goes on within a recheck of that entry.
/// A campaign that stays paused thus costs one queue count every <see cref="DeliveryConsumer.PauseRecheck"/>, whatever
/// its size.
/// </remarks>
public sealed partial class PausedJobs(BrokerConnections connections, OutcomeLog outcomes, ILogger<PausedJobs> logger) : BackgroundService
{
    /// <summary>Jobs taken before their copies are confirmed and they are acked: a pass goes in chunks of this many.</summary>
    private const int ChunkSize = 500;

    /// <summary>How long the queue may go without a pass when nothing asked for one.</summary>
    public static readonly TimeSpan FullPassInterval = TimeSpan.FromMinutes(30);

    private long taken;

    /// <summary>Jobs this Worker took from the paused queue so far (each moved to work or to the back of the queue).</summary>
    public long Taken => Interlocked.Read(ref taken);

    private readonly Topology topology = connections.Topology;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Reconnecting.RunAsync(
        RoundsAsync, (reason, delay) => LogInterrupted(reason, delay.TotalSeconds),
        DeliveryConsumer.PauseRecheck, TimeSpan.FromSeconds(30), stoppingToken);

    private async Task RoundsAsync(CancellationToken stoppingToken)
    {
        await (await connections.GetAsync(ConnectionRole.Consume, stoppingToken)).DeclareAsync(
            topology.PausedQueue, topology.PausedQueueArguments, logger, stoppingToken);
        // A ledger still replaying would take every paused campaign for a running one.
        await outcomes.StartupReplayed.WaitAsync(stoppingToken);
        await using var mover = new ExclusiveLock(connections, ConnectionRole.Consume, $"{topology.PausedQueue}.mover");
        // One channel for every round: closing a channel right after its acks can undo them (AckedChannels).
        var channel = await connections.CreateChannelAsync(ConnectionRole.Consume,
            BrokerConnections.ConfirmedChannel, stoppingToken);
        try
        {
            using var timer = new PeriodicTimer(DeliveryConsumer.PauseRecheck);
            long releasesSeen = -1;
            uint leftByLastPass = 0;
            IReadOnlySet<WaitingJob> leftUnknown = new HashSet<WaitingJob>();
            var lastPass = System.Diagnostics.Stopwatch.GetTimestamp(); // the first pass is due anyway (releasesSeen)
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (!await mover.HoldAsync(stoppingToken))
                {
                    releasesSeen = -1; // whoever moves now, this Worker looks afresh when it moves again
                    continue;
                }

                var ready = (await channel.QueueDeclarePassiveAsync(topology.PausedQueue, stoppingToken)).MessageCount;
                var releases = outcomes.Ledger.Releases;
                var due = ready > 0 && (releases != releasesSeen || ready > leftByLastPass
                                        || leftUnknown.Any(w => Route(w) == PausedJobRoute.Work)
                                        || System.Diagnostics.Stopwatch.GetElapsedTime(lastPass) > FullPassInterval);
                if (!due)
                {
                    leftByLastPass = ready;
                    continue;
                }

                releasesSeen = releases;
                var (resumed, waiting, unknown) = await PassAsync(channel, ready, leftUnknown, stoppingToken);
                leftUnknown = unknown;
                leftByLastPass = ready - (uint)resumed;
                lastPass = System.Diagnostics.Stopwatch.GetTimestamp();
                if (resumed > 0)
                {
                    LogMovedBack(resumed, waiting);
                }
            }
        }
        finally
        {
            await channel.CloseAfterAcksAsync();
            await channel.DisposeAsync();
        }
    }

    /// <summary>Takes the <paramref name="ready"/> jobs that waited when the pass began, in chunks: each job whose
    /// campaign may go on to the work queue, each other to the back of the paused queue.</summary>
    /// <remarks>Bounded by what waited at the start: the copies it puts back are never taken again in the same pass.</remarks>
    /// <returns>Also the jobs left waiting because nothing here knows their campaign yet: the next pass is due as soon as one may go.</returns>
    private async Task<(int Resumed, int Waiting, IReadOnlySet<WaitingJob> Unknown)> PassAsync(
        IChannel channel, uint ready, IReadOnlySet<WaitingJob> knownUnknown, CancellationToken stoppingToken)
    {
        int resumed = 0, waiting = 0;
        var unknown = new HashSet<WaitingJob>();
        var moves = new List<Task>(ChunkSize);
        while (resumed + waiting < ready)
        {
            ulong last = 0;
            moves.Clear();
            while (moves.Count < ChunkSize && resumed + waiting < ready
                   && await channel.BasicGetAsync(topology.PausedQueue, autoAck: false, stoppingToken) is { } job)
            {
                var waiter = JobMessages.TryRead(job.Body.Span, out _) is { } read ? new WaitingJob(read.CampaignId, read.AcceptanceId) : null;
                var route = waiter is null ? PausedJobRoute.Work : Route(waiter);
                if (route == PausedJobRoute.WaitForEntry && unknown.Add(waiter!) && !knownUnknown.Contains(waiter!))
                {
                    LogUnknownCampaign(waiter!.CampaignId);
                }

                var stays = route != PausedJobRoute.Work;
                // An unreadable job goes to work too: the consumer parks it with its reason.
                moves.Add(channel.BasicPublishAsync("", stays ? topology.PausedQueue : topology.WorkQueue, mandatory: false,
                    new BasicProperties(job.BasicProperties), job.Body, stoppingToken).AsTask());
                last = job.DeliveryTag;
                if (stays)
                {
                    waiting++;
                }
                else
                {
                    resumed++;
                }
            }

            if (last == 0)
            {
                break; // fewer waited than counted (another process took some): the pass is over
            }

            // Every copy confirmed, then every job of the chunk acknowledged at once; a failure before the ack leaves
            // them all where they were (the channel closes with them unacknowledged, and the rounds start over).
            await Task.WhenAll(moves);
            await channel.BasicAckAsync(last, multiple: true, stoppingToken);
            Interlocked.Add(ref taken, moves.Count);
        }

        return (resumed, waiting, unknown);
    }

    private PausedJobRoute Route(WaitingJob job) =>
        Decide(outcomes.Ledger.Find(job.CampaignId), job.AcceptanceId is { } acceptance ? outcomes.Ledger.Acceptance(acceptance) : null);

    /// <summary>Where a job of the paused queue goes, given what this process knows of its campaign and its submission.</summary>
    /// <remarks>
    /// A known campaign's job waits while the campaign is paused or held, and otherwise goes to work (where the consumer
    /// drops a cancelled campaign's). An unknown campaign's job whose submission is settled goes too: the consumer sends
    /// a live one and drops a void one (a submission's entries are forgotten with its campaign, so a settled one is not
    /// a forgotten one). Otherwise the job waits for its campaign's first entry: the Front's <c>accepted</c> may not have
    /// reached this Worker yet, or the campaign's history was dropped by the stream's retention before a snapshot
    /// covered it, and then what was sent of it is no longer known, so it must not resume by itself.
    /// </remarks>
    internal static PausedJobRoute Decide(CampaignStatus? campaign, AcceptanceState? acceptance) => campaign switch
    {
        null when acceptance is AcceptanceState.Live or AcceptanceState.Void => PausedJobRoute.Work,
        null => PausedJobRoute.WaitForEntry,
        { CancelledAt: null, Status: CampaignLedger.Statuses.Paused or CampaignLedger.Statuses.Held } => PausedJobRoute.Wait,
        _ => PausedJobRoute.Work,
    };

    /// <summary>A job's campaign and submission: what its route depends on.</summary>
    private sealed record WaitingJob(string CampaignId, string? AcceptanceId);

    [LoggerMessage(LogLevel.Warning, "A job of campaign {CampaignId} waits in the paused queue for the campaign's first entry " +
        "(its acceptance not yet read here, or its history dropped before a snapshot covered it)")]
    private partial void LogUnknownCampaign(string campaignId);

    [LoggerMessage(LogLevel.Information, "Moved {Resumed} jobs of resumed campaigns back to work ({Waiting} still paused or held)")]
    private partial void LogMovedBack(int resumed, int waiting);

    [LoggerMessage(LogLevel.Warning, "Moving paused jobs back to work was interrupted ({Reason}); again in {Seconds} s")]
    private partial void LogInterrupted(string reason, double seconds);
}

/// <summary>What becomes of a job in the paused queue at a pass.</summary>
public enum PausedJobRoute
{
    /// <summary>To the work queue.</summary>
    Work,

    /// <summary>Back to the paused queue: its campaign is paused or held.</summary>
    Wait,

    /// <summary>Back to the paused queue: nothing here knows its campaign yet.</summary>
    WaitForEntry,
}
