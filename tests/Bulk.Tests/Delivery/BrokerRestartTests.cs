using System.Diagnostics;
using System.Net;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>RabbitMQ itself goes away mid-campaign and comes back: nothing is lost, and everyone recovers without a restart.</summary>
[Collection(BrokerCollection.Name)]
public sealed class BrokerRestartTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task RestartingRabbitMqMidCampaign_DeliversEveryRecipient_AndTheStatusIsRightAfterwards()
    {
        await using var node = await BrokerNode.StartAsync();
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontOnAsync(broker, node.Uri);
        await system.StartWorkerProcessAsync(sink.Port);

        const int recipients = 3000;
        var id = await system.PostAsync(SampleCampaigns.Personal(recipients));
        await sink.WaitForDistinctAsync(500, TimeSpan.FromSeconds(60));

        await node.StopAsync();
        var down = Stopwatch.StartNew();
        var duringOutage = await system.Http.PostAsync("/campaigns", JsonBody.Of(SampleCampaigns.Personal(1)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, duringOutage.StatusCode);
        Assert.NotNull(duringOutage.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await system.Http.GetAsync("/readyz")).StatusCode);
        var atStop = sink.Recipients().Count;

        await node.StartAgainAsync();
        var upAfter = down.Elapsed;
        var recovery = Stopwatch.StartNew();
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(180));
        var toComplete = recovery.Elapsed;
        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30));
        var mails = await sink.WaitForDistinctAsync(recipients, TimeSpan.FromSeconds(30));

        output.WriteLine($"broker stopped after {atStop} mails, back after {upAfter.TotalSeconds:F1} s; campaign completed " +
            $"{toComplete.TotalSeconds:F1} s after the broker was back; {mails.Count - recipients} duplicates");
        Assert.Equal(recipients, mails.Distinct().Count());
        Assert.Equal((CampaignLedger.Statuses.Completed, recipients, 0, 0), (done.Status, done.Delivered, done.Failed, done.Pending));
        // The Front takes campaigns again without having been restarted.
        await system.PostAsync(SampleCampaigns.Personal(1));
    }
}
