using System.Security.Cryptography;
using System.Text;
using Bulk.Broker;
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
/// <para>
/// The local lock is let go only once the broker has deleted the queue (or the connection is gone): the next request
/// of this Front declares the queue on a channel of its own, the broker keeps no order between two channels, and a
/// delete carried out after that declare would leave it holding a lock that another Front can take.
/// </para>
/// </remarks>
public sealed partial class IdempotencyKeyLock(BrokerConnection broker, ILogger<IdempotencyKeyLock> logger)
{
    private const ushort ResourceLocked = 405;
    private readonly SemaphoreSlim[] stripes = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    public async Task<KeyLease> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];
        var stripe = stripes[Convert.ToInt32(hash[..2], 16) % stripes.Length];
        await stripe.WaitAsync(cancellationToken);
        var handedOn = false; // the stripe is the lease's, or a release's, from then on
        try
        {
            var queue = broker.Topology.IdempotencyLock(hash);
            while (true)
            {
                var connection = await broker.GetAsync(cancellationToken);
                IChannel channel;
                try
                {
                    channel = await BrokerAnswers.OpenChannelAsync(connection, null, cancellationToken);
                }
                catch (Exception e) when (e is not (OperationCanceledException or IOException))
                {
                    throw new BrokerUnavailableException(e); // the connection closed (heartbeats missed, its node died)
                }

                var declaring = channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
                try
                {
                    await BrokerAnswers.WithinAsync(declaring, cancellationToken);
                    handedOn = true;
                    return new KeyLease(stripe, connection, channel, queue, logger);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == ResourceLocked)
                {
                    await channel.DisposeAsync();
                    await Task.Delay(50, cancellationToken);
                }
                catch (Exception e)
                {
                    // The broker did not answer in time: it may still take the lock when it answers again, for this
                    // Front's connection, where nobody would ever let it go. Undone in the background.
                    handedOn = true;
                    _ = KeyLease.ReleaseAsync(stripe, connection, channel, queue, declaring, logger);
                    if (e is not (OperationCanceledException or IOException))
                    {
                        // A closed connection or channel: the broker is away for this request, a 503 like any other.
                        throw new BrokerUnavailableException(e);
                    }

                    throw;
                }
            }
        }
        finally
        {
            if (!handedOn)
            {
                stripe.Release();
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "The broker did not answer the release of key lock {Queue} in time while its connection lives: closing the connection, and the lock with it")]
    internal static partial void LogReleaseUnanswered(ILogger logger, string queue);
}

/// <summary>An idempotency key held by this request, for as long as <see cref="Connection"/> is open.</summary>
public sealed class KeyLease(SemaphoreSlim stripe, IConnection connection, IChannel channel, string queue, ILogger logger) : IAsyncDisposable
{
    /// <summary>How long a release keeps its request waiting for the broker: past it the request answers, and the
    /// release goes on without it.</summary>
    private static readonly TimeSpan ReleaseWait = TimeSpan.FromSeconds(1);

    /// <summary>The connection holding the lock: what is done under the lock is done on it, or not at all.</summary>
    public IConnection Connection => connection;

    /// <summary>False once the lock's channel or connection closed, and with it the lock.</summary>
    public bool Held => channel.IsOpen;

    public async ValueTask DisposeAsync()
    {
        var releasing = ReleaseAsync(stripe, connection, channel, queue, declaring: null, logger);
        try
        {
            await releasing.WaitAsync(ReleaseWait);
        }
        catch (TimeoutException)
        {
            // The broker is slow or silent: this request's answer does not wait for it, nor does any other request,
            // whose connection this is too. The key stays locked until the broker deletes the queue or the connection
            // closes (its heartbeats stop), and the stripe until then.
        }
    }

    /// <summary>Deletes the lock's queue, if <paramref name="declaring"/> (when given) may have made it, then lets the stripe go.</summary>
    internal static async Task ReleaseAsync(SemaphoreSlim stripe, IConnection connection, IChannel channel, string queue, Task? declaring, ILogger logger)
    {
        try
        {
            if (declaring is not null)
            {
                // Whatever it comes to: a declare the client stopped waiting for may still be carried out, and the
                // delete, sent on the same channel after it, is carried out after it.
                await Task.WhenAny(declaring);
            }

            if (channel.IsOpen)
            {
                // No token: the wait ends with the broker's answer, the connection's end (heartbeats), or the client's
                // own timeout for an answer.
                await channel.QueueDeleteAsync(queue);
            }
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException)
        {
            // The connection went away, and the exclusive queue with it; or the channel closed, refused the declare.
        }
        catch (Exception)
        {
            // The connection lives, yet the broker did not answer the delete: it may still carry it out, after the
            // next request's declare on another channel. Closing the connection is the one sure release left; every
            // other request on it has waited as long for the broker by now.
            IdempotencyKeyLock.LogReleaseUnanswered(logger, queue);
            try
            {
                await connection.AbortAsync();
            }
            catch (Exception)
            {
                // Closed either way.
            }
        }
        finally
        {
            stripe.Release();
            try
            {
                await channel.DisposeAsync();
            }
            catch (Exception)
            {
                // Nothing is held by a channel whose close fails: the queue is gone, or its connection is.
            }
        }
    }
}
