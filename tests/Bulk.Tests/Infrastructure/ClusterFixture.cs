using System.Globalization;
using System.Text.Json;
using Bulk.Broker;
using Bulk.Contracts;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;

namespace Bulk.Tests.Infrastructure;

/// <summary>A real three-node RabbitMQ cluster on loopback (Debian's rabbitmq-server through <c>./bulk cluster</c>),
/// started once for the cluster tests (a class fixture); its nodes can be killed with kill -9 and started again.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private readonly string name = $"bulkc{Random.Shared.Next(10_000, 99_999)}";

    public int BasePort { get; private set; }

    public IReadOnlyList<ClusterNode> Nodes { get; private set; } = [];

    /// <summary>Credentials and vhost for every process; the nodes are given as endpoints.</summary>
    public string Uri => Nodes[0].Uri;

    public async Task InitializeAsync()
    {
        BasePort = FreePorts();
        Nodes = [.. Enumerable.Range(1, 3).Select(i => new ClusterNode($"{name}{i}@localhost", BasePort + i - 1,
            Path.Combine(Repository.Root, ".run", $"cluster-{name}{i}")))];
        await BulkScriptAsync("start");
        await WaitUntilJoinedAsync(Nodes[0], TimeSpan.FromSeconds(60));
    }

    /// <summary>The settings that point a process at every node, <paramref name="preferred"/> first and kept first
    /// (no shuffle), so that a test knows which node the process is connected to while that node lives.</summary>
    public string[] SettingsPreferring(ClusterNode preferred) =>
    [
        $"--RabbitMq:Uri={Uri}",
        $"--RabbitMq:Endpoints={string.Join(',', Nodes.OrderBy(n => n == preferred ? 0 : 1).Select(n => $"127.0.0.1:{n.Port}"))}",
        "--RabbitMq:ShuffleEndpoints=false",
    ];

    /// <summary>kill -9 of the node's Erlang VM: no goodbye to its peers or clients.</summary>
    public async Task KillAsync(ClusterNode node)
    {
        var pid = int.Parse((await File.ReadAllTextAsync(Path.Combine(node.Data, "pid"))).Trim(), CultureInfo.InvariantCulture);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await Poll.UntilAsync(() => Task.FromResult(!Answers(node.Port)), TimeSpan.FromSeconds(10));
    }

    /// <summary>Starts a killed node again and waits until the others list it as running (it rejoins by itself).</summary>
    public async Task RestartAsync(ClusterNode node)
    {
        await BulkScriptAsync("start");
        await WaitUntilJoinedAsync(Nodes.First(n => n != node && Answers(n.Port)), TimeSpan.FromSeconds(60));
    }

    /// <summary>Starts any node a failed test left down, so that the next test finds three.</summary>
    public async Task EnsureAllRunningAsync()
    {
        if (Nodes.All(n => Answers(n.Port)))
        {
            return;
        }

        await BulkScriptAsync("start");
        await WaitUntilJoinedAsync(Nodes[0], TimeSpan.FromSeconds(60));
    }

    /// <summary>The nodes <paramref name="observer"/> sees running.</summary>
    public async Task<IReadOnlyList<string>> RunningNodesAsync(ClusterNode observer)
    {
        var json = await RabbitmqctlAsync(observer, "cluster_status", "--formatter", "json");
        return [.. JsonDocument.Parse(json).RootElement.GetProperty("running_nodes").EnumerateArray().Select(e => e.GetString()!)];
    }

    /// <summary>Every queue whose name starts with <paramref name="prefix"/>: type, leader, ready and unacknowledged
    /// messages, as a running node sees them (for a failure message).</summary>
    public async Task<string> DescribeQueuesAsync(string prefix)
    {
        var observer = Nodes.First(n => Answers(n.Port));
        var json = await RabbitmqctlAsync(observer, "list_queues", "name", "type", "leader", "messages", "messages_ready", "messages_unacknowledged", "consumers", "--formatter", "json");
        return string.Join("; ", JsonDocument.Parse(json).RootElement.EnumerateArray()
            .Where(q => q.GetProperty("name").GetString()!.StartsWith(prefix, StringComparison.Ordinal))
            .Select(q => q.ToString()));
    }

    /// <summary>The node leading a quorum queue or a stream, as <paramref name="observer"/> sees it.</summary>
    public async Task<ClusterNode> LeaderOfAsync(string queue, ClusterNode observer)
    {
        var json = await RabbitmqctlAsync(observer, "list_queues", "name", "leader", "--formatter", "json");
        var leader = JsonDocument.Parse(json).RootElement.EnumerateArray()
            .First(q => q.GetProperty("name").GetString() == queue).GetProperty("leader").GetString();
        return Nodes.First(n => n.Name == leader);
    }

    /// <summary>Declares a system's queues from <paramref name="node"/>, which then leads them (the declaring node starts
    /// as leader): the test then knows which node to kill, and can keep the processes off it.</summary>
    public async Task DeclareQueuesOnAsync(ClusterNode node, Topology topology, IEnumerable<TimeSpan> delays)
    {
        await using var connection = await new ConnectionFactory { Uri = new System.Uri(node.Uri) }.CreateConnectionAsync();
        await connection.DeclareQueuesAsync(topology, delays, NullLogger.Instance, CancellationToken.None);
    }

    /// <summary>Declares a system's streams from <paramref name="node"/>, which then leads them.</summary>
    public async Task DeclareStreamsOnAsync(ClusterNode node, Topology topology)
    {
        await using var connection = await new ConnectionFactory { Uri = new System.Uri(node.Uri) }.CreateConnectionAsync();
        var defaults = new RabbitMqOptions();
        await connection.DeclareAsync(topology.OutcomesStream,
            topology.OutcomesStreamArguments(defaults.OutcomesMaxAge, defaults.OutcomesMaxBytes), NullLogger.Instance, CancellationToken.None);
        await connection.DeclareAsync(topology.SuppressionsStream, topology.SuppressionsStreamArguments, NullLogger.Instance, CancellationToken.None);
    }

    private async Task WaitUntilJoinedAsync(ClusterNode observer, TimeSpan timeout) =>
        await Poll.UntilAsync(async () => (await RunningNodesAsync(observer)).Count == 3, timeout);

    private async Task BulkScriptAsync(string verb)
    {
        await using var script = ChildProcess.Start("bash",
            [Path.Combine(Repository.Root, "bulk"), "cluster", verb, name, BasePort.ToString(CultureInfo.InvariantCulture)]);
        await script.WaitForExitAsync(TimeSpan.FromMinutes(3));

        if (script.ExitCode != 0)
        {
            throw new InvalidOperationException($"./bulk cluster {verb} {name} failed: {script.Output}");
        }
    }

    private static async Task<string> RabbitmqctlAsync(ClusterNode node, params string[] arguments)
    {
        await using var ctl = ChildProcess.Start("rabbitmqctl", ["-n", node.Name, "-q", .. arguments]);
        // Until its output is read to the end, not only until it exits.
        await ctl.WaitForExitAsync(TimeSpan.FromSeconds(60));

        return ctl.ExitCode == 0 ? ctl.Output : throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)}: {ctl.Output}");
    }

    // Three AMQP ports in a row, each with its distribution port 20000 above.
    private static int FreePorts()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var port = Random.Shared.Next(7000, 7900);
            if (Enumerable.Range(port, 3).All(p => BrokerNode.IsFree(p) && BrokerNode.IsFree(p + 20000)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no three free port pairs for a test cluster");
    }

    /// <summary>Whether a node listens on its AMQP port (it is running).</summary>
    public static bool Answers(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            client.Connect(System.Net.IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async Task DisposeAsync()
    {
        await BulkScriptAsync("stop");
        foreach (var node in Nodes)
        {
            if (Directory.Exists(node.Data))
            {
                Directory.Delete(node.Data, recursive: true);
            }

            File.Delete(node.Data + ".out");
        }
    }
}

/// <summary>One node of the test cluster: its Erlang name, its AMQP port on 127.0.0.1, and its data folder.</summary>
public sealed record ClusterNode(string Name, int Port, string Data)
{
    public string Uri => $"amqp://guest:guest@127.0.0.1:{Port}/";

    public override string ToString() => Name;
}
