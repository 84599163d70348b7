using Bulk.Broker;
using Bulk.Contracts;
using RabbitMQ.Client;

namespace Bulk.Front.Broker;

/// <summary>The Front's publishing connection, with the work queue and the parking lot declared on it.</summary>
/// <remarks>
/// Declared here as well as by the Worker, so that a campaign posted before any Worker ran is routable. A request
/// that finds no broker fails at once with <see cref="BrokerUnavailableException"/>, and the next one tries again.
/// </remarks>
public sealed class BrokerConnection(BrokerConnections connections, ILogger<BrokerConnection> logger)
{
    private IConnection? declaredOn;

    public Topology Topology => connections.Topology;

    /// <exception cref="BrokerUnavailableException">The broker cannot be reached.</exception>
    public async Task<IConnection> GetAsync(CancellationToken cancellationToken)
    {
        var connection = await connections.GetAsync(ConnectionRole.Publish, cancellationToken);
        if (!ReferenceEquals(Volatile.Read(ref declaredOn), connection))
        {
            try
            {
                // Each declare would wait up to the client's 20 s for a silent broker, whatever the token says.
                await BrokerAnswers.WithinAsync(connection.DeclareQueuesAsync(Topology, [], logger, cancellationToken), cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new BrokerUnavailableException(e);
            }

            Volatile.Write(ref declaredOn, connection);
        }

        return connection;
    }
}
