using System.Security.Cryptography;
using System.Text;
using Bulk.Front.Broker;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Bulk.Front.Campaigns;

/// <summary>Lets one request at a time, across every Front, work on a given <c>Idempotency-Key</c>.</summary>
/// <remarks>
/// The lock is an exclusive queue named after the key: RabbitMQ lets one connection hold it, and drops it if that
/// connection dies, so a crashed Front never leaves a key locked. Requests of this Front share its one connection,
/// so they also queue on a local lock first.
/// <para>
/// The lock lives exactly as long as its connection, so whatever is done under it must be done on that connection: a
/// publish on a new connection (to another node of a cluster, after this one's node died) could follow another
/// Front's taking the key meanwhile. <see cref="KeyLease.Connection"/> is that connection, never reopened.
/// </para>
/// </remarks>
public sealed class IdempotencyKeyLock(BrokerConnection broker)
{
    private const ushort ResourceLocked = 405;
    private readonly SemaphoreSlim[] stripes = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    public async Task<KeyLease> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];
        var stripe = stripes[Convert.ToInt32(hash[..2], 16) % stripes.Length];
        await stripe.WaitAsync(cancellationToken);
        try
        {
            var queue = broker.Topology.IdempotencyLock(hash);
            while (true)
            {
                var connection = await broker.GetAsync(cancellationToken);
                var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                try
                {
                    await channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
                    return new KeyLease(stripe, connection, channel, queue);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == ResourceLocked)
                {
                    await channel.DisposeAsync();
                    await Task.Delay(50, cancellationToken);
                }
            }
        }
        catch
        {
            stripe.Release();
            throw;
        }
    }
}

/// <summary>An idempotency key held by this request, for as long as <see cref="Connection"/> is open.</summary>
public sealed class KeyLease(SemaphoreSlim stripe, IConnection connection, IChannel channel, string queue) : IAsyncDisposable
{
    private static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The connection holding the lock: what is done under the lock is done on it, or not at all.</summary>
    public IConnection Connection => connection;

    /// <summary>False once the lock's channel or connection closed, and with it the lock.</summary>
    public bool Held => channel.IsOpen;

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(ReleaseTimeout);
            await channel.QueueDeleteAsync(queue, cancellationToken: timeout.Token);
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException)
        {
            // The connection went away, and the exclusive queue with it.
        }
        catch (OperationCanceledException)
        {
            // The broker does not answer on this connection: closing it frees the key (the queue is the connection's),
            // where a connection that came back later would keep it locked; the next use opens a new one.
            await connection.AbortAsync();
        }
        finally
        {
            await channel.DisposeAsync();
            stripe.Release();
        }
    }
}
