using Bulk.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>What a connection is used for. RabbitMQ advises publishing and consuming on separate connections, so that
/// a publisher held back by the broker's flow control never holds back a consumer's acknowledgements.</summary>
public enum ConnectionRole
{
    /// <summary>Publishing: jobs, stream entries, rate tokens, locks.</summary>
    Publish,

    /// <summary>Consuming: the work queue and the stream tails.</summary>
    Consume,
}

/// <summary>A process's connections to RabbitMQ: one per <see cref="ConnectionRole"/>, each shared by many channels.</summary>
/// <remarks>
/// The one place a connection is made. A connection is opened on first use and opened again on the next use after it
/// dropped; there is no automatic recovery. Each user (the consumer, a tail, a publisher) watches its own channel and
/// asks again when it closes, so nothing is ever half recovered, and a request that finds no broker fails at once.
/// <para>
/// With a cluster's nodes in <c>RabbitMq__Endpoints</c>, each opening tries them in this process's order (shuffled
/// once at start, so that processes spread over the nodes, while a process keeps its connections on one node as long
/// as that node lives): a connection whose node died is opened on the next one that answers.
/// </para>
/// </remarks>
public sealed partial class BrokerConnections(IOptions<RabbitMqOptions> options, BrokerClientName name, ILogger<BrokerConnections> logger)
    : IAsyncDisposable
{
    /// <summary>How long opening a connection may take before the broker counts as unreachable.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>A channel whose publishes complete only once the broker confirms them (and throw if it refuses them).</summary>
    public static readonly CreateChannelOptions ConfirmedChannel = new(
        publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true);

    // One lock per role: opening (or failing to open) the consuming connection never holds up publishing.
    private readonly SemaphoreSlim[] opening = [.. Enum.GetValues<ConnectionRole>().Select(_ => new SemaphoreSlim(1, 1))];
    private readonly IConnection?[] connections = new IConnection?[Enum.GetValues<ConnectionRole>().Length];
    // Per role, how far along the endpoint list its next connection starts: moved on when a node will not do.
    private readonly int[] firstEndpoint = new int[Enum.GetValues<ConnectionRole>().Length];
    private readonly Uri uri = options.Value.ToBrokerUri();
    private readonly TimeSpan heartbeat = TimeSpan.FromSeconds(options.Value.HeartbeatSeconds);
    private readonly IReadOnlyList<(string Host, int Port)> endpoints = InProcessOrder(options.Value);

    public Topology Topology { get; } = options.Value.ToTopology();

    /// <summary>The open connection for <paramref name="role"/>, opened now if there is none.</summary>
    /// <exception cref="BrokerUnavailableException">The broker cannot be reached.</exception>
    public async Task<IConnection> GetAsync(ConnectionRole role, CancellationToken cancellationToken)
    {
        if (connections[(int)role] is { IsOpen: true } open)
        {
            return open;
        }

        var gate = opening[(int)role];
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (connections[(int)role] is { IsOpen: true } reopened)
            {
                return reopened;
            }

            if (connections[(int)role] is { } dropped)
            {
                connections[(int)role] = null;
                // Not awaited here: disposing a dropped connection waits for its consumers' handlers to return, and
                // they may be waiting for this very call (a handler recording an outcome needs a connection).
                _ = DisposeQuietlyAsync(dropped);
            }

            // The client gives up on a handshake a silent broker never answers only after its own 10 s, whatever the
            // token says: the caller stops at its token, and a connection that opens after all is closed unused.
            var connection = await BrokerAnswers.WithinAsync(OpenAsync(role, CancellationToken.None), cancellationToken, DisposeQuietlyAsync);
            connections[(int)role] = connection;
            return connection;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Closes <paramref name="connection"/> (if it is still this role's) and makes the role's next connection
    /// try the next node first: for a node that cannot serve what the role needs (no replica of a stream there).</summary>
    public async Task MoveToAnotherNodeAsync(ConnectionRole role, IConnection connection)
    {
        var gate = opening[(int)role];
        await gate.WaitAsync();
        try
        {
            if (!ReferenceEquals(connections[(int)role], connection))
            {
                return; // already replaced
            }

            connections[(int)role] = null;
            Interlocked.Increment(ref firstEndpoint[(int)role]);
            LogMoving(role, connection.Endpoint.HostName, connection.Endpoint.Port);
            _ = DisposeQuietlyAsync(connection);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>A new channel on the connection for <paramref name="role"/>, or <see cref="OperationCanceledException"/>
    /// at <paramref name="cancellationToken"/> if the broker does not answer (see <see cref="BrokerAnswers"/>).</summary>
    public async Task<IChannel> CreateChannelAsync(ConnectionRole role, CreateChannelOptions? channelOptions, CancellationToken cancellationToken)
    {
        var connection = await GetAsync(role, cancellationToken);
        return await BrokerAnswers.OpenChannelAsync(connection, channelOptions, cancellationToken);
    }

    private async Task<IConnection> OpenAsync(ConnectionRole role, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            Uri = uri,
            AutomaticRecoveryEnabled = false,
            TopologyRecoveryEnabled = false,
            RequestedConnectionTimeout = ConnectTimeout,
            // Without heartbeats a broker that stops answering keeps every connection "open" for as long as the
            // client's 60 s default takes to notice; with them, a silent node is left after about three missed.
            RequestedHeartbeat = heartbeat,
        };
        var clientName = $"bulk-{name.Process}-{role.ToString().ToLowerInvariant()}@{Environment.MachineName}/{Environment.ProcessId}";

        try
        {
            // Tried in this order, first to answer wins. (Given a plain list, the client would shuffle it at every
            // opening, and a process's connections would scatter over the nodes whatever ShuffleEndpoints says.)
            var first = Volatile.Read(ref firstEndpoint[(int)role]) % endpoints.Count;
            var connection = await factory.CreateConnectionAsync(new InOrder(
                [.. endpoints.Skip(first).Concat(endpoints.Take(first)).Select(e => new AmqpTcpEndpoint(e.Host, e.Port, factory.Ssl))]),
                clientName, cancellationToken);
            LogConnected(role, connection.Endpoint.HostName, connection.Endpoint.Port, ClusterName(connection));
            return connection;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogUnreachable(Describe(endpoints), e.InnerException?.Message ?? e.Message);
            throw new BrokerUnavailableException(e);
        }
    }

    /// <summary>The node this process connects to first, then the others: shuffled once per process, unless told not to.</summary>
    private static IReadOnlyList<(string Host, int Port)> InProcessOrder(RabbitMqOptions options)
    {
        var listed = options.ToEndpoints().ToArray();
        if (options.ShuffleEndpoints)
        {
            Random.Shared.Shuffle(listed);
        }

        return listed;
    }

    private sealed class InOrder(IReadOnlyList<AmqpTcpEndpoint> endpoints) : IEndpointResolver
    {
        public IEnumerable<AmqpTcpEndpoint> All() => endpoints;
    }

    private static string Describe(IEnumerable<(string Host, int Port)> endpoints) => string.Join(", ", endpoints.Select(e => $"{e.Host}:{e.Port}"));

    private static string ClusterName(IConnection connection) =>
        connection.ServerProperties?.TryGetValue("cluster_name", out var value) == true && value is byte[] bytes
            ? System.Text.Encoding.UTF8.GetString(bytes)
            : "?";

    private static async Task DisposeQuietlyAsync(IConnection dropped)
    {
        try
        {
            await dropped.DisposeAsync();
        }
        catch (Exception)
        {
            // It is gone either way.
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in connections)
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }

        foreach (var gate in opening)
        {
            gate.Dispose();
        }
    }

    [LoggerMessage(LogLevel.Information, "Connected to RabbitMQ at {Host}:{Port} (cluster {Cluster}) for {Role}")]
    private partial void LogConnected(ConnectionRole role, string host, int port, string cluster);

    [LoggerMessage(LogLevel.Warning, "Moving the {Role} connection away from RabbitMQ at {Host}:{Port}, to the next node")]
    private partial void LogMoving(ConnectionRole role, string host, int port);

    [LoggerMessage(LogLevel.Warning, "RabbitMQ at {Endpoints} is unreachable: {Reason}")]
    private partial void LogUnreachable(string endpoints, string reason);
}

/// <summary>Which process this is (<c>front</c>, <c>worker</c>), for the names its connections show in RabbitMQ.</summary>
public sealed record BrokerClientName(string Process);

/// <summary>The broker could not be reached, or did not confirm: the caller answers 503, or tries again later.</summary>
/// <remarks>
/// Its message is fit for a client; the reason, which names the broker's host and port, is logged where it is thrown
/// and kept as the inner exception. An <see cref="IOException"/>, like every other broker failure here.
/// </remarks>
public sealed class BrokerUnavailableException(Exception inner) : IOException(Unavailable, inner)
{
    public const string Unavailable = "The broker is unavailable.";
}
