using Bulk.Contracts;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Bulk.Front.Broker;

/// <summary>The Front's one connection to RabbitMQ, opened on first use and reopened on the next use after it drops.</summary>
/// <remarks>
/// The Front does not use the client's automatic recovery: a request that finds no broker must fail fast with 503
/// rather than wait for a recovery loop, and the next request simply tries again.
/// </remarks>
public sealed partial class BrokerConnection(IOptions<RabbitMqOptions> options, ILogger<BrokerConnection> logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private IConnection? connection;

    public Topology Topology { get; } = options.Value.ToTopology();

    public async Task<IConnection> GetAsync(CancellationToken cancellationToken)
    {
        if (connection is { IsOpen: true } open)
        {
            return open;
        }

        await gate.WaitAsync(cancellationToken);
        try
        {
            if (connection is { IsOpen: true } reopened)
            {
                return reopened;
            }

            if (connection is not null)
            {
                await connection.DisposeAsync();
                connection = null;
            }

            connection = await OpenAsync(cancellationToken);
            return connection;
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<IConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            Uri = options.Value.ToBrokerUri(),
            ClientProvidedName = $"bulk-front@{Environment.MachineName}",
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
        };

        try
        {
            var opened = await factory.CreateConnectionAsync(cancellationToken);
            await using (var channel = await opened.CreateChannelAsync(cancellationToken: cancellationToken))
            {
                // Declared here as well as by the Worker, so a campaign posted before any Worker ran is routable.
                await channel.QueueDeclareAsync(Topology.DeadQueue, durable: true, exclusive: false, autoDelete: false,
                    arguments: Topology.DeadQueueArguments, cancellationToken: cancellationToken);
                await channel.QueueDeclareAsync(Topology.WorkQueue, durable: true, exclusive: false, autoDelete: false,
                    arguments: Topology.WorkQueueArguments, cancellationToken: cancellationToken);
            }

            LogConnected(options.Value.ToBrokerUri().Host, options.Value.ToBrokerUri().Port);
            return opened;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogUnreachable(options.Value.ToBrokerUri().Host, options.Value.ToBrokerUri().Port, e.Message);
            throw new BrokerUnavailableException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }

        gate.Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Connected to RabbitMQ at {Host}:{Port}")]
    private partial void LogConnected(string host, int port);

    [LoggerMessage(LogLevel.Warning, "RabbitMQ at {Host}:{Port} is unreachable: {Reason}")]
    private partial void LogUnreachable(string host, int port, string reason);
}

/// <summary>The broker could not take the work: the caller answers 503 and nothing was enqueued.</summary>
/// <remarks>
/// Its message is fit for a client (<see cref="BrokerProblem.Unavailable"/>); the reason, which names the broker's host
/// and port, is logged where it is thrown and kept as the inner exception.
/// </remarks>
public sealed class BrokerUnavailableException(Exception inner) : Exception(BrokerProblem.Unavailable, inner);
