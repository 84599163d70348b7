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
        try
        {
            await channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
            held = channel;
            return true;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == ResourceLocked)
        {
            await channel.DisposeAsync();
            return false;
        }
    }

    private async Task ReleaseAsync()
    {
        if (held is not null)
        {
            await held.DisposeAsync();
            held = null;
        }
    }

    public ValueTask DisposeAsync() => new(ReleaseAsync());
}
