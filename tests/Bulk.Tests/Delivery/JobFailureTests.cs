using System.Text;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Delivery;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Bulk.Tests.Delivery;

/// <summary>No job is ever left unacknowledged: a failure at any step parks it with the reason, its undecided recipients are counted, and every slot comes back.</summary>
/// <remarks>
/// The Worker has one of each slot (an SMTP connection, an unrecorded mail, a job in hand), so a slot a failure kept
/// would stall the next send for good: that later mail goes out proves each came back.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class JobFailureTests(BrokerFixture broker)
{
    /// <summary>Throws once, at the <paramref name="nth"/> time <paramref name="at"/> starts, as a bug in that step would.</summary>
    private sealed class FailingStep(DeliveryStep at, int nth) : DeliveryObserver
    {
        private int seen;

        public override void Step(DeliveryStep step)
        {
            if (step == at && Interlocked.Increment(ref seen) == nth)
            {
                throw new InvalidOperationException($"injected failure at {step}");
            }
        }
    }

    /// <summary>Every step, for recipients sent straight away and for recipients whose domain has a rate of its own
    /// (a rate they never wait for: they still go through the wait for their domain's turn).</summary>
    public static TheoryData<DeliveryStep, bool> Steps
    {
        get
        {
            var steps = new TheoryData<DeliveryStep, bool>();
            foreach (var step in Enum.GetValues<DeliveryStep>())
            {
                steps.Add(step, false);
                steps.Add(step, true);
            }

            return steps;
        }
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task AFailureAtAnyStep_EndsTheJobAckedOrParkedWithItsReason_TheCountsAddUp_EverySlotIsGivenBack_AndAReplayFinishesIt(
        DeliveryStep step, bool domainLimited)
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // The commit happens once per job; every other step once per recipient, so fail the third and let two go first.
        var worker = await system.StartWorkerAsync(smtp,
            services => services.Replace(ServiceDescriptor.Singleton<DeliveryObserver>(new FailingStep(step, step == DeliveryStep.Commit ? 1 : 3))),
            "--Smtp:MaxConnections=1", "--Delivery:MaxUnrecorded=1", "--Delivery:Prefetch=1",
            $"--Smtp:DomainLimits:{(domainLimited ? "example.org" : "limited.example")}=10000");

        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        var first = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));
        Assert.Equal(0u, await system.WorkQueueDepthAsync());

        if (step == DeliveryStep.Commit)
        {
            // Every recipient was delivered and recorded before the commit broke: nothing is undecided, nothing parked.
            Assert.Equal((CampaignLedger.Statuses.Completed, 10, 0), (first.Status, first.Delivered, first.Failed));
            Assert.Equal(10, smtp.Mails.Count);
            Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
            var next = await system.PostAsync(SampleCampaigns.Personal(3));
            Assert.Equal(3, (await system.WaitForStatusAsync(next, s => s.IsFinished, TimeSpan.FromSeconds(30))).Delivered);
            await StopsWithNoJobInHandAsync(worker);
            return;
        }

        // Sequential sends: two recipients delivered, the third broke the job, it and the rest are parked as failed.
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 2, 8), (first.Status, first.Delivered, first.Failed));
        // A send whose outcome could not be recorded did reach the relay: the one duplicate a replay can cause.
        var sentUnrecorded = step == DeliveryStep.Record ? 1 : 0;
        Assert.Equal(2 + sentUnrecorded, smtp.Mails.Count);
        var failure = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures")[0];
        Assert.Contains($"injected failure at {step}", failure.GetProperty("reply").GetString());
        Assert.True(failure.GetProperty("deadLettered").GetBoolean());

        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.DeadQueue) == 1, TimeSpan.FromSeconds(10));
        var dead = (await broker.GetAsync(system.Topology.DeadQueue))!;
        var reason = Encoding.UTF8.GetString((byte[])dead.BasicProperties.Headers![AmqpHeaders.DeadReason]!);
        Assert.Contains($"injected failure at {step}", reason);
        Assert.Equal(8, JsonSerializer.Deserialize(dead.Body.Span, BulkJson.Default.DeliveryJob)!.Recipients.Count);
        await broker.PublishAsync(system.Topology.DeadQueue, dead.Body.ToArray());

        using var replay = await system.Http.PostAsync("/dead-letters/replay", null);
        replay.EnsureSuccessStatusCode();
        var done = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal((10, 0), (done.Delivered, done.Failed));
        Assert.Equal(10, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(10 + sentUnrecorded, smtp.Mails.Count);
        await StopsWithNoJobInHandAsync(worker);
    }

    /// <summary>A graceful stop waits for every job in hand to be finished or handed back: a job the failure kept would hold it up.</summary>
    private static Task StopsWithNoJobInHandAsync(IHost worker) => worker.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
}
