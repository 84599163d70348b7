using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>One process at a time: the holder of an exclusive, auto-deleted queue, which the broker drops with the
/// holder's connection, so a process that dies lets another take over.</summary>
public sealed class ExclusiveLock(BrokerConnections connections, ConnectionRole role, string queue) : IAsyncDisposable
{
    private const ushort ResourceLocked = 405;

    private IChannel? held;

    /// <summary>The lock queue's name.</summary>
    public string Queue => queue;

    /// <summary>Whether this process holds the lock, taking it when it is free.</summary>
    public async Task<bool> HoldAsync(CancellationToken cancellationToken)
    {
        if (held is { IsOpen: true })
        {
            return true;
        }

        await ReleaseAsync();
        var channel = await connections.CreateChannelAsync(role, null, cancellationToken);
        var declaring = channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
        try
        {
            await BrokerAnswers.WithinAsync(declaring, cancellationToken);
            held = channel;
            return true;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == ResourceLocked)
        {
            await channel.DisposeAsync();
            return false;
        }
        catch (Exception)
        {
            // Nobody else will close this channel (a closed connection, a timeout, a queue of that name with other
            // properties): left open, one more would stay for the connection's life on every attempt. A declare still
            // unanswered is let finish first; if it lands, the lock stays with this process's connection, and the
            // next call takes it back on a new channel (the queue is the connection's).
            _ = CloseWhenAnsweredAsync(channel, declaring);
            throw;
        }
    }

    private static async Task CloseWhenAnsweredAsync(IChannel channel, Task declaring)
    {
        await Task.WhenAny(declaring);
        try
        {
            await channel.DisposeAsync();
        }
        catch (Exception)
        {
            // Its connection is gone, and the channel with it.
        }
    }

    private async Task ReleaseAsync()
    {
        if (held is not null)
        {
            if (held.IsOpen)
            {
                // The queue is the connection's, not the channel's: closing the channel alone would keep the lock for as
                // long as the process's connection lives (a host stopped in a process that goes on, as in the tests).
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await BrokerAnswers.WithinAsync(held.QueueDeleteAsync(queue, cancellationToken: CancellationToken.None), deadline.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or RabbitMQ.Client.Exceptions.RabbitMQClientException or IOException)
                {
                    // Then it goes with the connection, as it always did.
                }
            }

            await held.DisposeAsync();
            held = null;
        }
    }

    public ValueTask DisposeAsync() => new(ReleaseAsync());
}
