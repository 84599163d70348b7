using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>Closing a channel that has just acknowledged messages taken from a quorum queue.</summary>
/// <remarks>
/// RabbitMQ 3.10 settles a quorum queue's acks asynchronously, and the return of a closing channel's unacknowledged
/// messages can overtake them when the queue's leader is on another node: measured on a three-node cluster, a channel
/// that took 100 jobs, put their copies back and acked them all, then closed at once, left up to 167 jobs; with 50 ms
/// between the ack and the close, 100 every time. No AMQP method waits for the settle (a passive declare does not),
/// so a channel that acked is closed only after <see cref="SettleTime"/>; long-lived channels are preferred.
/// </remarks>
public static class AckedChannels
{
    /// <summary>How long acks are given to settle before their channel closes (several times what was measured to suffice).</summary>
    public static readonly TimeSpan SettleTime = TimeSpan.FromMilliseconds(300);

    /// <summary>Waits for the channel's acks to settle, then closes it; a channel already closed is left as it is.</summary>
    public static async Task CloseAfterAcksAsync(this IChannel channel)
    {
        if (!channel.IsOpen)
        {
            return;
        }

        await Task.Delay(SettleTime);
        try
        {
            await channel.CloseAsync();
        }
        catch (Exception) when (!channel.IsOpen)
        {
            // Closed meanwhile (its connection went): nothing was left to settle there.
        }
    }
}
