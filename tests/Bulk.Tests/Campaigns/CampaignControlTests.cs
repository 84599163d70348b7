using System.Net;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Delivery;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>Pause, resume and cancel, with real Workers: what they promise is checked at the SMTP server.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CampaignControlTests(BrokerFixture broker, ITestOutputHelper output)
{
    private static async Task<CampaignStatus> PostControlAsync(BulkSystem system, string id, string action, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await system.Http.PostAsync($"/campaigns/{id}/{action}", null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{action}: expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return expected == HttpStatusCode.OK ? JsonSerializer.Deserialize<CampaignStatus>(body, JsonSerializerOptions.Web)! : null!;
    }

    [Fact]
    public async Task APausedCampaignSendsNothingMore_AndResumingFinishesItWithEveryRecipientOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(20);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(600));
        await smtp.WaitForMailsAsync(60, TimeSpan.FromSeconds(30));
        var paused = await PostControlAsync(system, id, "pause");
        Assert.Equal(CampaignLedger.Statuses.Paused, paused.Status);

        // Within a second or two nothing more goes out.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var settled = smtp.Mails.Count;
        await Task.Delay(TimeSpan.FromSeconds(3));
        output.WriteLine($"paused at {paused.Delivered} delivered; {settled} mails once settled; {smtp.Mails.Count} three seconds later");
        Assert.Equal(settled, smtp.Mails.Count);
        Assert.InRange(settled, 60, 599);
        Assert.Equal(CampaignLedger.Statuses.Paused, (await system.StatusAsync(id)).Status);

        var resumed = await PostControlAsync(system, id, "resume");
        Assert.NotEqual(CampaignLedger.Statuses.Paused, resumed.Status);
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(90));

        Assert.Equal((CampaignLedger.Statuses.Completed, 600), (done.Status, done.Delivered));
        await Task.Delay(500);
        Assert.Equal(600, smtp.Mails.Count);
        Assert.Equal(600, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
    }

    [Fact]
    public async Task APausedCampaignsJobs_StayPutWhileItIsPaused_AndGoBackToWorkAtTheResume()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(20);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp, "--Delivery:RecipientsPerJob=5");
        var mover = worker.Services.GetServices<IHostedService>().OfType<PausedJobs>().Single();

        var id = await system.PostAsync(SampleCampaigns.Personal(600));
        await smtp.WaitForMailsAsync(30, TimeSpan.FromSeconds(30));
        await PostControlAsync(system, id, "pause");
        // Every job not yet done ends up in the paused queue; once they are all there, nothing moves them.
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.PausedQueue) > 0
                                          && await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(30));
        await Task.Delay(DeliveryConsumer.PauseRecheck * 2);
        var waiting = await broker.MessageCountAsync(system.Topology.PausedQueue);
        var takenBefore = mover.Taken;
        await Task.Delay(TimeSpan.FromSeconds(10));
        var takenWhilePaused = mover.Taken - takenBefore;
        output.WriteLine($"{waiting} jobs paused; taken from the paused queue in 10 s while paused: {takenWhilePaused}");
        Assert.Equal(0, takenWhilePaused);
        Assert.Equal(waiting, await broker.MessageCountAsync(system.Topology.PausedQueue));

        var mailsAtResume = smtp.Mails.Count;
        var sinceResume = System.Diagnostics.Stopwatch.StartNew();
        await PostControlAsync(system, id, "resume");
        await smtp.WaitForMailsAsync(mailsAtResume + 1, TimeSpan.FromSeconds(30));
        output.WriteLine($"first mail {sinceResume.Elapsed.TotalSeconds:F1} s after the resume");
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(90));
        Assert.Equal((CampaignLedger.Statuses.Completed, 600), (done.Status, done.Delivered));
        Assert.Equal(600, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.PausedQueue));
    }

    [Fact]
    public async Task CancellingACampaign_DropsWhatIsLeft_AndSaysHowManyWereNeverSent()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(20);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(600));
        await smtp.WaitForMailsAsync(50, TimeSpan.FromSeconds(30));
        var cancelled = await PostControlAsync(system, id, "cancel");
        Assert.Equal(CampaignLedger.Statuses.Cancelled, cancelled.Status);
        Assert.True(cancelled.Pending > 0);

        await Poll.UntilAsync(async () => await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(15));
        await Task.Delay(TimeSpan.FromSeconds(2));
        var final = await system.StatusAsync(id);
        output.WriteLine($"cancelled with {cancelled.Pending} not sent; finally {final.Delivered} delivered, {final.Pending} never sent");
        Assert.Equal(CampaignLedger.Statuses.Cancelled, final.Status);
        Assert.Equal(smtp.Mails.Count, final.Delivered);
        Assert.Equal(600, final.Delivered + final.Pending);
        Assert.True(final.Pending > 300, $"only {final.Pending} left unsent");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(final.Delivered, smtp.Mails.Count);

        // A cancelled campaign is finished: nothing more can be done to it.
        await PostControlAsync(system, id, "resume", HttpStatusCode.Conflict);
        await PostControlAsync(system, id, "pause", HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task ControllingAnUnknownOrFinishedCampaign_IsA404OrA409Problem()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        foreach (var action in new[] { "pause", "resume", "cancel" })
        {
            var unknown = await system.Http.PostAsync($"/campaigns/nope/{action}", null);
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
        }

        var id = await system.PostAsync(SampleCampaigns.Personal(3));
        await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));
        foreach (var action in new[] { "pause", "resume", "cancel" })
        {
            var finished = await system.Http.PostAsync($"/campaigns/{id}/{action}", null);
            Assert.Equal(HttpStatusCode.Conflict, finished.StatusCode);
            Assert.Contains("completed", await finished.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task ResumingACampaignThatIsNotPaused_IsA409()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(3)); // no Worker: it stays queued

        await PostControlAsync(system, id, "resume", HttpStatusCode.Conflict);
        Assert.Equal(CampaignLedger.Statuses.Paused, (await PostControlAsync(system, id, "pause")).Status);
        Assert.Equal(CampaignLedger.Statuses.Paused, (await PostControlAsync(system, id, "pause")).Status);
        Assert.Equal(CampaignLedger.Statuses.Queued, (await PostControlAsync(system, id, "resume")).Status);
    }
}
