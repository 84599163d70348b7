using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>Acknowledges a consumer's deliveries on a channel that is closed while deliveries may still be arriving;
/// disposed before the channel.</summary>
/// <remarks>
/// RabbitMQ.Client 7 still sends an ack on a channel whose close has begun, and RabbitMQ answers a frame on a channel it
/// has already closed by closing the whole connection (504 CHANNEL_ERROR "expected 'channel.open'"), with every other
/// channel on it. A stream reader that stops when it has found its entry is exactly that case: seen in a CI run, where
/// the ack of the entry that ended a read overtook the close that followed it. Once the gate is disposed no ack is sent,
/// and disposing waits for the one in flight; what is left unacked goes back with the channel's close (a stream's
/// deliveries are only credit).
/// </remarks>
public sealed class AckGate(IChannel channel) : IAsyncDisposable
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private bool closed;

    /// <summary>Acks <paramref name="deliveryTag"/> (and, when <paramref name="multiple"/>, every delivery before it), unless
    /// the gate or the channel is already closed.</summary>
    public async Task AckAsync(ulong deliveryTag, bool multiple = false)
    {
        await gate.WaitAsync();
        try
        {
            if (!closed && channel.IsOpen)
            {
                await channel.BasicAckAsync(deliveryTag, multiple);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Sends no more acks, once the one in flight (if any) is written.</summary>
    public async ValueTask DisposeAsync()
    {
        await gate.WaitAsync();
        closed = true;
        gate.Release();
    }
}
