using System.Globalization;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>Few connections, many channels: a Worker holds at most two connections to RabbitMQ (publish and consume).</summary>
[Collection(BrokerCollection.Name)]
public sealed class BrokerConnectionTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task AWorkerDoingEverything_HoldsAtMostTwoConnectionsToTheBroker()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // The global rate limit too: its ticker and its token channel are broker clients of their own.
        var worker = await system.StartWorkerProcessAsync(sink.Port, "--Smtp:GlobalMaxMessagesPerSecond=500");

        var id = await system.PostAsync(SampleCampaigns.Personal(300));
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.Completed, 300), (done.Status, done.Delivered));
        // A control entry, recorded by the Front and read by the Worker's tail, after the Worker has done its work.
        using (var pause = await system.Http.PostAsync($"/campaigns/{id}/pause", null))
        {
            Assert.Equal(System.Net.HttpStatusCode.Conflict, pause.StatusCode);
        }

        var connections = ConnectionsTo(worker.Id, new Uri(broker.Uri).Port);
        output.WriteLine($"the Worker process holds {connections} connections to the broker");
        Assert.InRange(connections, 1, 2);
    }

    /// <summary>Established TCP connections of process <paramref name="pid"/> to <paramref name="port"/>, read from /proc.</summary>
    private static int ConnectionsTo(int pid, int port)
    {
        var sockets = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Where(target => target?.StartsWith("socket:[", StringComparison.Ordinal) == true)
            .Select(target => target!["socket:[".Length..^1])
            .ToHashSet();
        var count = 0;
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists))
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var remotePort = int.Parse(fields[2][(fields[2].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (fields[3] == "01" && remotePort == port && sockets.Contains(fields[9]))
                {
                    count++;
                }
            }
        }

        return count;
    }
}
