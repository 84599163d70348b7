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
/// </remarks>
public sealed class IdempotencyKeyLock(BrokerConnection broker)
{
    private const ushort ResourceLocked = 405;
    private readonly SemaphoreSlim[] stripes = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    public async Task<IAsyncDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
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
                    return new Lease(stripe, channel, queue);
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

    private sealed class Lease(SemaphoreSlim stripe, IChannel channel, string queue) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await channel.QueueDeleteAsync(queue);
            }
            catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException)
            {
                // The connection went away, and the exclusive queue with it.
            }
            finally
            {
                await channel.DisposeAsync();
                stripe.Release();
            }
        }
    }
}
