using System.Text;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>Transient failures wait through the delay tiers; what outlasts them is parked, counted, and can be replayed.</summary>
[Collection(BrokerCollection.Name)]
public sealed class RetryTierTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task ARecipientThatAlwaysGets451_IsDeadLetteredWithItsLastReply_TheRestAreDelivered_AndAReplayDeliversIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var relayFixed = false;
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) && !Volatile.Read(ref relayFixed) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, "--Delivery:ImmediateRetries=1");

        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        Assert.Equal((9, 1), (done.Delivered, done.Failed));
        Assert.Equal(9, smtp.Mails.Count);
        // Immediate attempt + 1 immediate retry, at the first try and after each of the three tiers.
        Assert.Equal(2 * (1 + BulkSystem.TestTiers.Length), smtp.AttemptsFor(SampleCampaigns.Address(3)));
        var failure = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures")[0];
        Assert.True(failure.GetProperty("deadLettered").GetBoolean());
        Assert.Contains("451", failure.GetProperty("reply").GetString());
        Assert.Equal(1u, await broker.MessageCountAsync(system.Topology.DeadQueue));

        Volatile.Write(ref relayFixed, true);
        var replay = JsonDocument.Parse(await (await system.Http.PostAsync("/dead-letters/replay", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(1, replay.GetProperty("recipients").GetInt32());

        var after = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal((10, 0), (after.Delivered, after.Failed));
        Assert.Single(smtp.Mails, m => m.Recipient == SampleCampaigns.Address(3));
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
    }

    [Fact]
    public async Task AReplay_MovesTheParkedJobFirst_AndItsRecipientsAreReopenedOnlyWhenAWorkerTakesIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var relayFixed = false;
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) && !Volatile.Read(ref relayFixed) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp, "--Delivery:ImmediateRetries=0");
        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        await worker.StopAsync();

        Volatile.Write(ref relayFixed, true);
        using (var replay = await system.Http.PostAsync("/dead-letters/replay", null))
        {
            Assert.Equal(1, JsonDocument.Parse(await replay.Content.ReadAsStringAsync()).RootElement.GetProperty("recipients").GetInt32());
        }

        // Moved, and nobody has taken it yet: the recipient still counts as failed, so no count claims work that is not under way.
        Assert.Equal((0u, 1u), (await broker.MessageCountAsync(system.Topology.DeadQueue), await system.WorkQueueDepthAsync()));
        var moved = await system.StatusAsync(id);
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 9, 1), (moved.Status, moved.Delivered, moved.Failed));

        await system.StartWorkerAsync(smtp);
        var done = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal((10, 0), (done.Delivered, done.Failed));
        Assert.Single(smtp.Mails, m => m.Recipient == SampleCampaigns.Address(3));
    }

    [Fact]
    public async Task ARelayAnswering451ForTwoMinutes_LosesNothing_AndDeadLettersNothing()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var outage = TimeSpan.FromMinutes(2);
        var until = DateTimeOffset.UtcNow + outage;
        smtp.RecipientRule = (_, _) => DateTimeOffset.UtcNow < until ? (451, "4.3.2 system not accepting messages") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // Tiers that add up to more than the outage: 5+10+20+40+60 s.
        await system.StartWorkerAsync(smtp, "--Delivery:RetryTiers=5s,10s,20s,40s,60s", "--Delivery:ImmediateRetries=2");

        var id = await system.PostAsync(SampleCampaigns.Personal(40));
        var deferred = await system.WaitForStatusAsync(id, s => s.Deferred == 40, TimeSpan.FromSeconds(30));
        Assert.Equal(0, deferred.Delivered);

        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, outage + TimeSpan.FromSeconds(90));
        var recoveredAfter = done.CompletedAt!.Value - until;
        output.WriteLine($"outage {outage.TotalSeconds} s; campaign completed {recoveredAfter.TotalSeconds:F1} s after the relay recovered");
        Assert.Equal((CampaignLedger.Statuses.Completed, 40, 0), (done.Status, done.Delivered, done.Failed));
        Assert.Equal(40, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(40, smtp.Mails.Count);
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
        await system.DisposeAsync();
        await broker.DeleteQueuesAsync([.. new[] { 5, 10, 20, 40, 60 }.Select(s => system.Topology.RetryQueue(TimeSpan.FromSeconds(s)))]);
    }
}
