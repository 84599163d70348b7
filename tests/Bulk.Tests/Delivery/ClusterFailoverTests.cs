using System.Diagnostics;
using System.Net;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Delivery;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>
/// A 20,000-recipient campaign on a real three-node cluster; at about a quarter of it one node is killed with kill -9
/// and stays down until the campaign is finished. Delivery must go on, on the two nodes left, without anyone
/// restarting anything: every recipient mailed, duplicates within the in-flight bound, the status exact on two Fronts
/// (each connected to a different node). The killed node is then started again and must rejoin.
/// </summary>
/// <remarks>
/// A queue or stream is led at first by the node that declared it, so each test declares the system's queues and
/// streams from a chosen node before any process starts, and pins each process to a chosen node: which node dies is
/// then exactly the scenario's, and the test checks that the broker agrees before it kills. The class is in the broker
/// tests' collection, so that it never runs beside the tests that time a rate on this small machine.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class ClusterFailoverTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private const int Recipients = 20_000;
    private const int KillAfter = Recipients / 4;

    // One recipient outside the big campaign's addresses, so that its mail is not counted as a duplicate.
    private static readonly string DuringOutage = SampleCampaigns.Personal(1).Replace(SampleCampaigns.Address(0), "outage@example.net", StringComparison.Ordinal);

    private static readonly IReadOnlyList<TimeSpan> Delays =
        [.. BulkSystem.TestTiers.Select(t => TimeSpan.FromSeconds(int.Parse(t[..^1], System.Globalization.CultureInfo.InvariantCulture)))];

    [Fact]
    public async Task KillingTheNodeLeadingTheWorkQueue_DeliveryGoesOnOnTheTwoLeft()
    {
        var (victim, home, other) = (cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]);
        await using var run = await ClusterRun.StartAsync(cluster, queuesOn: victim, streamsOn: other, processesOn: home, secondFrontOn: other);
        Assert.Equal(victim, await cluster.LeaderOfAsync(run.System.Topology.WorkQueue, other));

        await run.RunAsync(victim, output, "leader of the work queue");
    }

    [Fact]
    public async Task KillingTheNodeTheFrontAndTheWorkerAreConnectedTo_TheyReconnectElsewhere_AndAPostIsAcceptedWithinSeconds()
    {
        var (victim, other, third) = (cluster.Nodes[1], cluster.Nodes[2], cluster.Nodes[0]);
        await using var run = await ClusterRun.StartAsync(cluster, queuesOn: third, streamsOn: other, processesOn: victim, secondFrontOn: other);

        await run.RunAsync(victim, output, "node of the Front and the Worker", duringOutage: async () =>
        {
            // The Front's connections died with the node: the next POST must find another node, not loop on 503.
            var posting = Stopwatch.StartNew();
            HttpResponseMessage response;
            var attempts = 0;
            while (true)
            {
                attempts++;
                response = await run.System.Http.PostAsync("/campaigns", JsonBody.Of(DuringOutage));
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || posting.Elapsed > TimeSpan.FromSeconds(30))
                {
                    break;
                }

                await Task.Delay(250);
            }

            output.WriteLine($"POST during the outage: {(int)response.StatusCode} after {posting.Elapsed.TotalSeconds:F1} s ({attempts} attempts)");
            // The Worker was on the killed node, and is now on another one.
            Assert.Contains($"Connected to RabbitMQ at 127.0.0.1:{victim.Port}", run.Worker.Output, StringComparison.Ordinal);
            await Poll.UntilAsync(() => Task.FromResult(cluster.Nodes.Where(n => n != victim)
                .Any(n => run.Worker.Output.Contains($"Connected to RabbitMQ at 127.0.0.1:{n.Port}", StringComparison.Ordinal))), TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.InRange(posting.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        });
    }

    [Fact]
    public async Task KillingTheNodeLeadingTheOutcomesStream_DeliveryGoesOnOnTheTwoLeft()
    {
        var (victim, home, other) = (cluster.Nodes[2], cluster.Nodes[0], cluster.Nodes[1]);
        await using var run = await ClusterRun.StartAsync(cluster, queuesOn: other, streamsOn: victim, processesOn: home, secondFrontOn: other);
        Assert.Equal(victim, await cluster.LeaderOfAsync(run.System.Topology.OutcomesStream, other));

        await run.RunAsync(victim, output, "leader of the outcomes stream");
    }

    [Fact]
    public async Task KillingANodeWhileACampaignIsPaused_NothingIsSentUntilResumed_ThenEveryRecipientOnce()
    {
        var (victim, home, other) = (cluster.Nodes[0], cluster.Nodes[2], cluster.Nodes[1]);
        await using var run = await ClusterRun.StartAsync(cluster, queuesOn: victim, streamsOn: other, processesOn: home, secondFrontOn: other);
        Assert.Equal(victim, await cluster.LeaderOfAsync(run.System.Topology.PausedQueue, other));

        await run.RunAsync(victim, output, "leader of the work and pause queues, while paused", beforeKill: async id =>
        {
            var paused = await run.ControlAsync(id, "pause");
            Assert.Equal(CampaignLedger.Statuses.Paused, paused.Status);
        }, duringOutage: async () =>
        {
            // Paused through the kill: jobs in hand finish their current mail, then nothing more goes out.
            await Task.Delay(TimeSpan.FromSeconds(3));
            var settled = run.Sink.Recipients().Count;
            await Task.Delay(TimeSpan.FromSeconds(5));
            Assert.Equal(settled, run.Sink.Recipients().Count);
            output.WriteLine($"paused with {settled} mails sent; none more in 5 s with the node down");
            var resumed = await run.ControlAsync(run.CampaignId, "resume");
            Assert.NotEqual(CampaignLedger.Statuses.Paused, resumed.Status);
        });
    }

    [Fact]
    public async Task KillingTheNodeLeadingTheGlobalRateBucket_TheRateHoldsAndDeliveryGoesOn()
    {
        const int rate = 100, recipients = 3000;
        var (victim, home) = (cluster.Nodes[2], cluster.Nodes[0]);
        await cluster.EnsureAllRunningAsync();
        await using var sink = await SmtpSink.StartAsync();
        await using var system = BulkSystem.On(cluster.Uri);
        // The bucket led by the victim (the declaring node leads), the Worker that fills and drains it elsewhere.
        var bucket = system.Topology.RateTokens(rate);
        await using (var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(victim.Uri) }.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            await channel.QueueDeclareAsync(bucket, true, false, false, system.Topology.RateTokensArguments(2 * (rate / 10)));
        }

        Assert.Equal(victim, await cluster.LeaderOfAsync(bucket, home));
        await system.StartFrontAsync(cluster.SettingsPreferring(home));
        await system.StartWorkerProcessAsync(sink.Port, [.. cluster.SettingsPreferring(home), $"--Smtp:GlobalMaxMessagesPerSecond={rate}"]);

        var id = await system.PostAsync(SampleCampaigns.Personal(recipients));
        await sink.WaitForDistinctAsync(recipients / 4, TimeSpan.FromSeconds(60));
        await cluster.KillAsync(victim);
        var sinceKill = Stopwatch.StartNew();
        var atKill = sink.Recipients().Count;
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        var afterKill = sinceKill.Elapsed;
        var mails = await sink.WaitForDistinctAsync(recipients, TimeSpan.FromSeconds(30));
        await cluster.RestartAsync(victim);

        var rest = recipients - atKill;
        output.WriteLine($"global rate {rate}/s: killed the bucket's leader {victim} after {atKill} mails; the other {rest} took " +
            $"{afterKill.TotalSeconds:F1} s ({rest / afterKill.TotalSeconds:F0}/s); {mails.Count - recipients} duplicates");
        Assert.Equal((CampaignLedger.Statuses.Completed, recipients), (done.Status, done.Delivered));
        Assert.Equal(recipients, mails.Distinct().Count());
        // Still limited after the failover (never faster than the rate, with a margin for the bucket's two refills),
        // and not stalled waiting for the node (at most 15 s more than the rate needs).
        Assert.InRange(afterKill.TotalSeconds, rest / (rate * 1.05) - 0.5, rest / (double)rate + 15);
    }

    [Fact]
    public async Task AStreamWithNoReplicaOnTheProcessesNode_IsReadFromAnotherNode_AndCampaignsAreDelivered()
    {
        var (holder, home) = (cluster.Nodes[0], cluster.Nodes[1]);
        await cluster.EnsureAllRunningAsync();
        await using var sink = await SmtpSink.StartAsync();
        await using var system = BulkSystem.On(cluster.Uri);
        // Streams with one copy, on another node than the processes' (as an earlier version, or RabbitMq__Replicas=1, leaves them).
        await using (var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(holder.Uri) }.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            foreach (var stream in new[] { system.Topology.OutcomesStream, system.Topology.SuppressionsStream })
            {
                await channel.QueueDeclareAsync(stream, true, false, false,
                    new Dictionary<string, object?> { ["x-queue-type"] = "stream", ["x-initial-cluster-size"] = 1 });
            }
        }

        await system.StartFrontAsync(cluster.SettingsPreferring(home));
        var worker = await system.StartWorkerProcessAsync(sink.Port,
            [.. cluster.SettingsPreferring(home), "--Logging:LogLevel:Bulk.Broker=Information"]);
        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/readyz")).IsSuccessStatusCode, TimeSpan.FromSeconds(60));

        var id = await system.PostAsync(SampleCampaigns.Personal(200));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        Assert.Equal((CampaignLedger.Statuses.Completed, 200), (done.Status, done.Delivered));
        Assert.Equal(200, (await sink.WaitForDistinctAsync(200, TimeSpan.FromSeconds(30))).Distinct().Count());
        Assert.Contains("has no replica on the node at 127.0.0.1:" + home.Port, worker.Output, StringComparison.Ordinal);
        Assert.Contains($"Connected to RabbitMQ at 127.0.0.1:{holder.Port}", worker.Output, StringComparison.Ordinal);
    }

    /// <summary>One scenario's system: smtp-sink, a Front and a Worker process pinned to one node, a second Front on another.</summary>
    private sealed class ClusterRun : IAsyncDisposable
    {
        private readonly ClusterFixture cluster;

        private ClusterRun(ClusterFixture cluster, SmtpSink sink, BulkSystem system)
        {
            this.cluster = cluster;
            Sink = sink;
            System = system;
        }

        public SmtpSink Sink { get; }

        public BulkSystem System { get; }

        public HttpClient SecondFront { get; private set; } = null!;

        public ChildProcess Worker { get; private set; } = null!;

        public string CampaignId { get; private set; } = "";

        public static async Task<ClusterRun> StartAsync(ClusterFixture cluster, ClusterNode queuesOn, ClusterNode streamsOn, ClusterNode processesOn, ClusterNode secondFrontOn)
        {
            await cluster.EnsureAllRunningAsync();
            var run = new ClusterRun(cluster, await SmtpSink.StartAsync(), BulkSystem.On(cluster.Uri));
            await cluster.DeclareQueuesOnAsync(queuesOn, run.System.Topology, Delays);
            await cluster.DeclareStreamsOnAsync(streamsOn, run.System.Topology);
            await run.System.StartFrontAsync(cluster.SettingsPreferring(processesOn));
            run.SecondFront = await run.System.StartAnotherFrontAsync(cluster.SettingsPreferring(secondFrontOn));
            run.Worker = await run.System.StartWorkerProcessAsync(run.Sink.Port,
                [.. cluster.SettingsPreferring(processesOn), "--Logging:LogLevel:Bulk.Broker.BrokerConnections=Information"]);
            return run;
        }

        public async Task RunAsync(ClusterNode victim, ITestOutputHelper output, string scenario,
            Func<string, Task>? beforeKill = null, Func<Task>? duringOutage = null)
        {
            CampaignId = await System.PostAsync(SampleCampaigns.Personal(Recipients));
            await Sink.WaitForDistinctAsync(KillAfter, TimeSpan.FromSeconds(120));
            if (beforeKill is not null)
            {
                await beforeKill(CampaignId);
            }

            await cluster.KillAsync(victim);
            var sinceKill = Stopwatch.StartNew();
            var atKill = Sink.Recipients().Count;
            if (duringOutage is not null)
            {
                await duringOutage();
            }
            else
            {
                await Sink.WaitForDistinctAsync(atKill + 500, TimeSpan.FromSeconds(30));
            }

            var toResume = sinceKill.Elapsed;

            // Both Fronts must come to the exact count, each from its own node, while the victim is still down.
            var first = await WaitForCompletionAsync(System.Http, TimeSpan.FromSeconds(240));
            var toComplete = sinceKill.Elapsed;
            var second = await WaitForCompletionAsync(SecondFront, TimeSpan.FromSeconds(60));
            Assert.False(ClusterFixture.Answers(victim.Port), "the killed node must stay down until the campaign is finished");

            var mails = await Sink.WaitForDistinctAsync(Recipients, TimeSpan.FromSeconds(30));
            var campaignMails = mails.Where(m => m.EndsWith("@example.org", StringComparison.Ordinal)).ToList();
            var duplicates = campaignMails.Count - campaignMails.Distinct().Count();
            var inFlightBound = new DeliveryOptions().MaxUnrecorded;

            var restarting = Stopwatch.StartNew();
            await cluster.RestartAsync(victim);
            var running = await cluster.RunningNodesAsync(victim);

            output.WriteLine($"{scenario}: killed {victim} after {atKill} mails; all {Recipients} mailed, completed " +
                $"{toComplete.TotalSeconds:F1} s after the kill with the node down (500 more mails {toResume.TotalSeconds:F1} s after it); duplicates {duplicates} (in-flight bound " +
                $"{inFlightBound}); both Fronts: {first.Delivered} delivered; {victim} rejoined in {restarting.Elapsed.TotalSeconds:F1} s");
            Assert.Equal(Recipients, campaignMails.Distinct().Count());
            Assert.InRange(duplicates, 0, inFlightBound);
            Assert.Equal((CampaignLedger.Statuses.Completed, Recipients, 0, 0), (first.Status, first.Delivered, first.Failed, first.Pending));
            Assert.Equal((first.Status, first.Delivered, first.Failed, first.Pending), (second.Status, second.Delivered, second.Failed, second.Pending));
            Assert.Equal(3, running.Count);
        }

        public async Task<CampaignStatus> ControlAsync(string id, string action)
        {
            using var response = await System.Http.PostAsync($"/campaigns/{id}/{action}", null);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await System.StatusAsync(id));
        }

        // A Front whose node just died may answer 503 for a moment: that is polled through, not a failure.
        private async Task<CampaignStatus> WaitForCompletionAsync(HttpClient front, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            CampaignStatus? last = null;
            while (DateTime.UtcNow < deadline)
            {
                try
                {
                    last = await CampaignPolling.StatusAsync(front, CampaignId);
                    if (last.CompletedAt is not null)
                    {
                        return last;
                    }
                }
                catch (HttpRequestException)
                {
                    // unavailable for now
                }

                await Task.Delay(200);
            }

            throw new TimeoutException($"campaign {CampaignId} not completed after {timeout}: {last}; queues: " +
                await cluster.DescribeQueuesAsync(System.Topology.Prefix));
        }

        public async ValueTask DisposeAsync()
        {
            SecondFront?.Dispose();
            await System.DisposeAsync();
            await Sink.DisposeAsync();
        }
    }
}
