using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using RabbitMQ.Client;

namespace Bulk.Worker.Delivery;

/// <summary>Moves the jobs waiting in <see cref="Topology.PausedQueue"/> back to work once their campaign is no longer
/// paused or held (or was cancelled: the consumer then drops them), every <see cref="DeliveryConsumer.PauseRecheck"/>.</summary>
/// <remarks>
/// The paused queue has no TTL and no dead-lettering: dead-lettering out of a quorum queue was found to lose its way
/// after a node of a cluster died (RabbitMQ 3.10's at-least-once dead-letter worker may fail to re-register on the new
/// leader, and the jobs then sit in the queue, neither ready nor deliverable: a paused campaign never resumed). Here a
/// Worker takes the jobs itself, in one AMQP transaction per round: a job whose campaign may go on is published to
/// the work queue, one still waiting to the back of the paused queue, and every one taken is acknowledged, all or
/// nothing. A Worker that dies mid-round leaves the jobs where they were. Several Workers share the rounds.
/// </remarks>
public sealed partial class PausedJobs(BrokerConnections connections, OutcomeLog outcomes, ILogger<PausedJobs> logger) : BackgroundService
{
    /// <summary>Jobs one round moves at most, so that a round stays short; the rest wait for the next round.</summary>
    private const int MaxPerRound = 500;

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
        using var timer = new PeriodicTimer(DeliveryConsumer.PauseRecheck);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var (resumed, waiting) = await RoundAsync(stoppingToken);
            if (resumed > 0)
            {
                LogMovedBack(resumed, waiting);
            }
        }
    }

    private async Task<(int Resumed, int Waiting)> RoundAsync(CancellationToken stoppingToken)
    {
        await using var channel = await connections.CreateChannelAsync(ConnectionRole.Consume, null, stoppingToken);
        await channel.TxSelectAsync(stoppingToken);
        int resumed = 0, waiting = 0;
        while (resumed + waiting < MaxPerRound
               && await channel.BasicGetAsync(topology.PausedQueue, autoAck: false, stoppingToken) is { } taken)
        {
            var stays = JobMessages.TryRead(taken.Body.Span, out _) is { } job && StillWaiting(job.CampaignId);
            // An unreadable job goes to work too: the consumer parks it with its reason.
            await channel.BasicPublishAsync("", stays ? topology.PausedQueue : topology.WorkQueue, mandatory: false,
                new BasicProperties(taken.BasicProperties), taken.Body, stoppingToken);
            await channel.BasicAckAsync(taken.DeliveryTag, multiple: false, stoppingToken);
            if (stays)
            {
                waiting++;
            }
            else
            {
                resumed++;
            }
        }

        await channel.TxCommitAsync(stoppingToken);
        return (resumed, waiting);
    }

    private bool StillWaiting(string campaignId) => outcomes.Ledger.Find(campaignId) is
    {
        CancelledAt: null, Status: CampaignLedger.Statuses.Paused or CampaignLedger.Statuses.Held,
    };

    [LoggerMessage(LogLevel.Information, "Moved {Resumed} jobs of resumed campaigns back to work ({Waiting} still paused or held)")]
    private partial void LogMovedBack(int resumed, int waiting);

    [LoggerMessage(LogLevel.Warning, "Moving paused jobs back to work was interrupted ({Reason}); again in {Seconds} s")]
    private partial void LogInterrupted(string reason, double seconds);
}
