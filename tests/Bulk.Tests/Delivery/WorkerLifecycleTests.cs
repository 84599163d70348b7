using System.Text;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>Stopping a Worker (what SIGTERM does through the host) loses nothing and sends nothing twice.</summary>
[Collection(BrokerCollection.Name)]
public sealed class WorkerLifecycleTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task StoppingAWorkerMidCampaign_HandsBackTheRest_AndAnotherWorkerFinishesWithEveryRecipientExactlyOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(15);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var first = await system.StartWorkerAsync(smtp);

        var response = await system.Http.PostAsync("/campaigns", JsonBody.Of(SampleCampaigns.Personal(1000)));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        await smtp.WaitForMailsAsync(150, TimeSpan.FromSeconds(30));

        await first.StopAsync();
        var atStop = smtp.Mails.Count;
        output.WriteLine($"first Worker stopped after {atStop} mails");
        Assert.InRange(atStop, 150, 999);
        // The wait is the point: a stopped Worker sends nothing more, however long one looks.
        await Task.Delay(300);
        Assert.Equal(atStop, smtp.Mails.Count);

        var second = await system.StartWorkerAsync(smtp);
        await smtp.WaitForMailsAsync(1000, TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(async () => await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(10));
        // Stopped, the second Worker has finished every send it began: the relay now holds all it will ever get.
        await second.StopAsync();

        var recipients = smtp.Mails.Select(m => m.Recipient).ToList();
        Assert.Equal(1000, recipients.Count);
        Assert.Equal(Enumerable.Range(0, 1000).Select(SampleCampaigns.Address).Order(), recipients.Order());
    }

    [Fact]
    public async Task AJobThatCannotBeRead_IsParkedInTheDeadQueueWithItsReason_AndTheWorkerGoesOn()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        // Once ready, the Front has declared the queues.
        await Poll.UntilAsync(
            async () => (await system.Http.GetAsync("/readyz")).StatusCode == System.Net.HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        await broker.PublishAsync(system.Topology.WorkQueue, Encoding.UTF8.GetBytes("this is not a job"));
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.DeadQueue) == 1, TimeSpan.FromSeconds(15));

        var parked = await broker.GetAsync(system.Topology.DeadQueue);
        Assert.NotNull(parked);
        Assert.Equal("this is not a job", Encoding.UTF8.GetString(parked.Body.Span));
        var reason = Encoding.UTF8.GetString((byte[])parked.BasicProperties.Headers![Bulk.Contracts.AmqpHeaders.DeadReason]!);
        Assert.StartsWith("unreadable job", reason);

        var response = await system.Http.PostAsync("/campaigns", JsonBody.Of(SampleCampaigns.Personal(3)));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        await smtp.WaitForMailsAsync(3, TimeSpan.FromSeconds(30));
    }
}
