using System.Collections.Concurrent;
using Bulk.Contracts;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Bulk.Broker;

/// <summary>The one place Bulk's queues are declared, with the arguments every declaration of them must agree on.</summary>
/// <remarks>
/// A queue or stream declared by an earlier version of Bulk may lack arguments this one declares (the replicas,
/// at-least-once dead-lettering); RabbitMQ refuses such a declaration, and a stream cannot be declared anew without
/// losing its history. Such a queue is then used as it is, and a warning says how to bring it up to date
/// (docs/operations.md, "Upgrading queues declared by an earlier version").
/// </remarks>
public static partial class TopologyDeclarations
{
    private const ushort PreconditionFailed = 406;

    // Each queue found with other arguments is reported once per process, not at every reconnect.
    private static readonly ConcurrentDictionary<string, bool> Reported = new();

    /// <summary>Declares the parking lot, the queue of jobs over the delivery limit, the work queue and the given delay
    /// queues (each dead-letters back to work).</summary>
    /// <remarks>The Front declares them too, so that a campaign posted before any Worker ran is routable. Each queue is
    /// declared after the one it dead-letters to.</remarks>
    public static async Task DeclareQueuesAsync(this IConnection connection, Topology topology, IEnumerable<TimeSpan> delays, ILogger logger, CancellationToken cancellationToken)
    {
        await connection.DeclareAsync(topology.DeadQueue, topology.DeadQueueArguments, logger, cancellationToken);
        await connection.DeclareAsync(topology.OverLimitQueue, topology.OverLimitQueueArguments, logger, cancellationToken);
        await connection.DeclareAsync(topology.WorkQueue, topology.WorkQueueArguments, logger, cancellationToken);
        await connection.DeclareAsync(topology.PausedQueue, topology.PausedQueueArguments, logger, cancellationToken);
        foreach (var delay in delays.Distinct())
        {
            await connection.DeclareAsync(topology.RetryQueue(delay), topology.RetryQueueArguments(delay), logger, cancellationToken);
        }
    }

    /// <summary>Declares a durable queue or stream with its arguments, or uses the one that exists with other arguments.</summary>
    /// <remarks>Each declaration has a channel of its own: a refused one closes its channel.</remarks>
    public static async Task DeclareAsync(this IConnection connection, string queue, IDictionary<string, object?> arguments, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason is { ReplyCode: PreconditionFailed } reason
                                                      && reason.ReplyText.Contains("inequivalent arg", StringComparison.Ordinal))
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
            if (Reported.TryAdd(queue, true))
            {
                LogUsedAsItIs(logger, queue, reason.ReplyText);
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "{Queue} exists with other arguments than this version declares, and is used as it is ({Reason}). " +
        "See docs/operations.md, \"Upgrading queues declared by an earlier version\"")]
    private static partial void LogUsedAsItIs(ILogger logger, string queue, string reason);
}
