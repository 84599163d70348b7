using System.Diagnostics;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>
/// Recipients a relay deferred wait in a delay tier, a quorum queue that dead-letters them back to work when their TTL
/// ends. The node leading that tier is killed with kill -9 while they wait: they must still come back, within the
/// tier's delay plus 10 s, and each be mailed once.
/// </summary>
/// <remarks>
/// The dead-lettering of an expired message is done by a process on the queue's leader. RabbitMQ 3.10 may not start it
/// again on the new leader (rabbitmq-server#7677): the expired messages then stay in the queue, neither ready nor
/// dead-lettered, and the campaign never ends. The tier is declared from the victim, which then leads it; the other
/// queues and the streams from the nodes the processes use, so that the kill touches nothing but the tier.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class DelayTierFailoverTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private const int Recipients = 50;

    // Long enough to kill its leader while the recipients wait in it, and for a new leader to be elected before they expire.
    private static readonly TimeSpan Tier = TimeSpan.FromSeconds(20);

    /// <param name="killAfterSeconds">How long after the deferral the leader dies: at once (a new leader has the whole
    /// delay to take over), or just before the recipients expire (they expire on a leader that was elected a moment ago).</param>
    [Theory]
    [InlineData(0)]
    [InlineData(18)]
    public async Task KillingTheLeaderOfADelayTierHoldingDeferredRecipients_TheyComeBackWithinTheDelayPlus10s_EachMailedOnce(int killAfterSeconds)
    {
        var (victim, home, other) = (cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]);
        await cluster.EnsureAllRunningAsync();
        await using var smtp = await TestSmtpServer.StartAsync();
        var relayFixed = false;
        smtp.RecipientRule = (_, _) => Volatile.Read(ref relayFixed) ? null : (451, "4.3.2 try again later");
        await using var system = BulkSystem.On(cluster.Uri);
        var tier = system.Topology.RetryQueue(Tier);
        await using (var connection = await new ConnectionFactory { Uri = new Uri(victim.Uri) }.CreateConnectionAsync())
        {
            await connection.DeclareAsync(tier, system.Topology.RetryQueueArguments(Tier), NullLogger.Instance, CancellationToken.None);
        }

        await cluster.DeclareQueuesOnAsync(home, system.Topology, [Tier]);
        await cluster.DeclareStreamsOnAsync(other, system.Topology);
        Assert.Equal(victim, await cluster.LeaderOfAsync(tier, home));
        Assert.Equal(home, await cluster.LeaderOfAsync(system.Topology.WorkQueue, other));
        await system.StartFrontAsync(cluster.SettingsPreferring(home));
        await system.StartWorkerAsync(smtp, [.. cluster.SettingsPreferring(home), "--Delivery:ImmediateRetries=0", $"--Delivery:RetryTiers={Tier.TotalSeconds}s"]);

        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));
        await system.WaitForStatusAsync(id, s => s.Deferred == Recipients, TimeSpan.FromSeconds(60));
        var waiting = Stopwatch.StartNew(); // at most this long since the job entered the tier
        await using (var connection = await new ConnectionFactory { Uri = new Uri(home.Uri) }.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            await Poll.UntilAsync(async () => (await channel.QueueDeclarePassiveAsync(tier)).MessageCount > 0, TimeSpan.FromSeconds(10));
        }

        Volatile.Write(ref relayFixed, true);
        if (TimeSpan.FromSeconds(killAfterSeconds) - waiting.Elapsed is { Ticks: > 0 } wait)
        {
            await Task.Delay(wait);
        }

        Assert.True(waiting.Elapsed < Tier, "the leader must die while the recipients wait in the tier");
        await cluster.KillAsync(victim);
        var killedAfter = waiting.Elapsed;

        CampaignStatus done;
        try
        {
            done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, Tier + TimeSpan.FromSeconds(10) - waiting.Elapsed);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; queues: {await cluster.DescribeQueuesAsync(system.Topology.Prefix)}", e);
        }

        var back = waiting.Elapsed;
        var newLeader = await cluster.LeaderOfAsync(tier, home);
        var restarting = Stopwatch.StartNew();
        await cluster.RestartAsync(victim);
        // Read after the restart, so that a second copy of the job (dead-lettering is at least once) had time to be sent.
        var mails = smtp.Mails.Select(m => m.Recipient).ToList();
        output.WriteLine($"{Recipients} recipients deferred into the {Tier.TotalSeconds} s tier; its leader {victim} killed " +
            $"{killedAfter.TotalSeconds:F1} s later ({newLeader} leads it now); completed {back.TotalSeconds:F1} s after the deferral with {mails.Count} mails; " +
            $"{victim} rejoined in {restarting.Elapsed.TotalSeconds:F1} s");
        Assert.Equal((CampaignLedger.Statuses.Completed, Recipients, 0, 0), (done.Status, done.Delivered, done.Failed, done.Pending));
        Assert.Equal(Recipients, mails.Distinct().Count());
        Assert.Equal(Recipients, mails.Count);
        Assert.Equal(3, (await cluster.RunningNodesAsync(victim)).Count);
    }
}
