using Bulk.Contracts;
using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>The one place Bulk's queues are declared, with the arguments every declaration of them must agree on.</summary>
public static class TopologyDeclarations
{
    /// <summary>Declares the parking lot, the work queue and the given delay queues (each dead-letters back to work).</summary>
    /// <remarks>The Front declares the first two too, so that a campaign posted before any Worker ran is routable.</remarks>
    public static async Task DeclareQueuesAsync(this IChannel channel, Topology topology, IEnumerable<TimeSpan> delays, CancellationToken cancellationToken)
    {
        await channel.QueueDeclareAsync(topology.DeadQueue, durable: true, exclusive: false, autoDelete: false,
            arguments: topology.DeadQueueArguments, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(topology.WorkQueue, durable: true, exclusive: false, autoDelete: false,
            arguments: topology.WorkQueueArguments, cancellationToken: cancellationToken);
        foreach (var delay in delays.Distinct())
        {
            await channel.QueueDeclareAsync(topology.RetryQueue(delay), durable: true, exclusive: false, autoDelete: false,
                arguments: topology.RetryQueueArguments(delay), cancellationToken: cancellationToken);
        }
    }

    /// <summary>Declares a stream with its arguments (retention is fixed when it is first declared).</summary>
    public static Task DeclareStreamAsync(this IChannel channel, string stream, IDictionary<string, object?> arguments, CancellationToken cancellationToken) =>
        channel.QueueDeclareAsync(stream, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: cancellationToken);
}
