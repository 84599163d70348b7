namespace Bulk.Tests.Infrastructure;

/// <summary>A RabbitMQ node of the test's own (Debian's rabbitmq-server through <c>./bulk node</c>), so it can be stopped and started.</summary>
public sealed class BrokerNode : IAsyncDisposable
{
    private readonly string? configuration;

    private BrokerNode(string name, int port, string? configuration)
    {
        Name = name;
        Port = port;
        this.configuration = configuration;
    }

    public string Name { get; }

    public int Port { get; }

    public string Uri => $"amqp://guest:guest@127.0.0.1:{Port}/";

    /// <param name="configuration">rabbitmq.conf lines for the node, e.g. <c>max_message_size = 16777216</c>.</param>
    public static async Task<BrokerNode> StartAsync(string? configuration = null)
    {
        var node = new BrokerNode($"bulkt{Random.Shared.Next(100_000, 999_999)}", FreePortPair(), configuration);
        await node.StartAgainAsync();
        return node;
    }

    public Task StartAgainAsync() => RunAsync("start");

    public Task StopAsync() => RunAsync("stop");

    /// <summary>SIGSTOP of the node's Erlang VM: its sockets stay open and nothing answers on them (a hung broker, or a
    /// network partition as its clients see it), until <see cref="ResumeAsync"/>.</summary>
    public Task PauseAsync() => SignalAsync("-STOP", paused: true);

    /// <summary>SIGCONT: the node answers again, beginning with whatever its clients sent meanwhile.</summary>
    public Task ResumeAsync() => SignalAsync("-CONT", paused: false);

    private bool isPaused;

    private async Task SignalAsync(string signal, bool paused)
    {
        var pidFile = Path.Combine(Repository.Root, ".run", $"node-{Name}", "pid");
        var pid = (await File.ReadAllTextAsync(pidFile)).Trim();
        using var kill = System.Diagnostics.Process.Start("kill", [signal, pid])!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {pid} failed");
        }

        isPaused = paused;
    }

    private async Task RunAsync(string verb)
    {
        await using var script = ChildProcess.Start("bash", [Path.Combine(Repository.Root, "bulk"), "node", verb, Name, Port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            new Dictionary<string, string> { ["BULK_NODE_CONF"] = configuration ?? "" });
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (!script.HasExited)
        {
            await Task.Delay(100, timeout.Token);
        }

        if (script.ExitCode != 0)
        {
            throw new InvalidOperationException($"./bulk node {verb} {Name} failed: {script.Output}");
        }
    }

    // The node listens on the port and on port + 20000 for its distribution protocol.
    private static int FreePortPair()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var port = Random.Shared.Next(5700, 6900);
            if (IsFree(port) && IsFree(port + 20000))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no free port pair for a test broker");
    }

    /// <summary>Whether nothing listens on the loopback port (shared by <see cref="ClusterFixture"/>).</summary>
    internal static bool IsFree(int port)
    {
        try
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (isPaused)
        {
            await ResumeAsync(); // a stopped VM answers no rabbitmqctl stop
        }

        await StopAsync();
        var data = Path.Combine(Repository.Root, ".run", $"node-{Name}");
        if (Directory.Exists(data))
        {
            Directory.Delete(data, recursive: true);
        }

        File.Delete(data + ".out");
    }
}
