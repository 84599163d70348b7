using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Bulk.Contracts;

namespace Bulk.Bench;

/// <summary>
/// One node against three: the same campaign through the single broker and through a three-node cluster started
/// here (<c>./bulk cluster</c>; every queue and stream then has a replica on each node), into the same sink, with one
/// Front and one Worker each. What replication costs the delivery rate.
/// </summary>
internal static class ClusterRun
{
    private const string Name = "benchc";

    public static async Task<JsonObject> MeasureAsync(Processes processes, string root, string brokerUri, string prefix, int sinkPort,
        int connections, int recipients, List<(string Name, string Value, string Target)> results)
    {
        var body = Campaign.Build(recipients, personalizedBytes: 2048);
        var alone = await RateAsync(processes, root, brokerUri, $"{prefix}-alone", sinkPort, connections, body, new Dictionary<string, string>());
        var basePort = FreeBasePort();
        await BulkScriptAsync(root, "start", basePort);
        try
        {
            // The one node again with the cluster's three Erlang VMs running beside it: on one machine they share its
            // cores, and this row tells that cost apart from replication's.
            var one = await RateAsync(processes, root, brokerUri, $"{prefix}-one", sinkPort, connections, body, new Dictionary<string, string>());
            var endpoints = string.Join(',', Enumerable.Range(basePort, 3).Select(p => $"127.0.0.1:{p}"));
            var three = await RateAsync(processes, root, $"amqp://guest:guest@127.0.0.1:{basePort}/", $"{prefix}-three", sinkPort, connections, body,
                new Dictionary<string, string> { ["RabbitMq__Endpoints"] = endpoints });
            results.Add(($"delivery rate, one node / one node beside an idle 3-node cluster / the 3-node cluster ({recipients:N0} mails)",
                $"{alone:F0} / {one:F0} / {three:F0} mails/s (cluster: {three / one:P0} of one node beside it, {three / alone:P0} of one node alone)", ""));
            return new JsonObject
            {
                ["recipients"] = recipients,
                ["oneNodeAloneMailsPerSecond"] = Math.Round(alone),
                ["oneNodeBesideTheClusterMailsPerSecond"] = Math.Round(one),
                ["threeNodesMailsPerSecond"] = Math.Round(three),
                ["ratioToOneNodeBeside"] = Math.Round(three / one, 3),
                ["ratioToOneNodeAlone"] = Math.Round(three / alone, 3),
            };
        }
        finally
        {
            await BulkScriptAsync(root, "stop", basePort);
            foreach (var data in Directory.EnumerateFileSystemEntries(Path.Combine(root, ".run"), $"cluster-{Name}*"))
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
                else
                {
                    File.Delete(data);
                }
            }
        }
    }

    private static async Task<double> RateAsync(Processes processes, string root, string uri, string prefix, int sinkPort, int connections,
        string body, Dictionary<string, string> extra)
    {
        var front = await BulkProcesses.StartFrontAsync(processes, root, uri, prefix, extra);
        var worker = await BulkProcesses.StartWorkerAsync(processes, root, uri, prefix, sinkPort, connections, extra);
        var id = await front.PostAsync(body);
        var status = await front.WaitUntilAsync(id, s => s.IsFinished, TimeSpan.FromMinutes(10));
        var rate = status.Delivered / (status.CompletedAt!.Value - status.FirstDeliveryAt!.Value).TotalSeconds;
        Console.WriteLine($"  {prefix}: {status.Delivered} delivered at {rate:F0} mails/s");
        await processes.StopAsync(worker);
        await processes.StopAsync(front.Process);
        await Broker.DeleteQueuesAsync(uri, new Topology(prefix));
        return rate;
    }

    private static async Task BulkScriptAsync(string root, string verb, int basePort)
    {
        using var script = Process.Start(new ProcessStartInfo("bash",
            [Path.Combine(root, "bulk"), "cluster", verb, Name, basePort.ToString(CultureInfo.InvariantCulture)]))!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await script.WaitForExitAsync(timeout.Token);
        if (script.ExitCode != 0)
        {
            throw new InvalidOperationException($"./bulk cluster {verb} failed");
        }
    }

    // Three AMQP ports in a row, each with its distribution port 20000 above.
    private static int FreeBasePort()
    {
        for (var port = 5901; port < 6500; port += 3)
        {
            if (Enumerable.Range(port, 3).All(p => Net.IsFree(p) && Net.IsFree(p + 20000)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no three free port pairs for the bench cluster");
    }
}
