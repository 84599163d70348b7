using System.Text.Json;
using Bulk.Broker;
using Bulk.Broker.Telemetry;
using Bulk.Front.Broker;
using RabbitMQ.Client;

namespace Bulk.Front.DeadLetters;

/// <summary>Moves parked jobs back onto the work queue, each with its delay tiers reset.</summary>
/// <remarks>
/// Each job moves on its own (published to the work queue and confirmed by the broker, then acked from the parking
/// lot; not an AMQP transaction, which RabbitMQ does not make atomic), marked as replayed: the
/// Worker that takes it reopens its recipients on the outcomes stream (no longer failed) before sending any. So the
/// recipients are reopened only once their job has really moved. Messages that are not jobs stay parked.
/// </remarks>
public sealed partial class DeadLetterReplay(BrokerConnection broker, ILogger<DeadLetterReplay> logger)
{
    public async Task<uint> CountAsync(CancellationToken cancellationToken)
    {
        var connection = await broker.GetAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        return (await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue, cancellationToken)).MessageCount;
    }

    public async Task<ReplayResult> ReplayAsync(CancellationToken cancellationToken)
    {
        var connection = await broker.GetAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(BrokerConnections.ConfirmedChannel, cancellationToken);
        var waiting = (await channel.QueueDeclarePassiveAsync(broker.Topology.DeadQueue, cancellationToken)).MessageCount;

        int jobs = 0, recipients = 0, unreadable = 0;
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
                    unreadable++;
                    await channel.BasicNackAsync(parked.DeliveryTag, multiple: false, requeue: true, cancellationToken);
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
            // Its acks settle before it closes: closing at once can hand the moved jobs back to the lot (AckedChannels).
            await channel.CloseAfterAcksAsync();
        }

        LogReplayed(jobs, recipients, unreadable);
        return new ReplayResult(jobs, recipients, unreadable);
    }

    [LoggerMessage(LogLevel.Information, "Replayed {Jobs} parked jobs ({Recipients} recipients); {Unreadable} unreadable messages stay parked")]
    private partial void LogReplayed(int jobs, int recipients, int unreadable);
}
