using System.Net;
using System.Text.Json;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>A replay of the parking lot brings back only what still belongs to a campaign the ledgers know and that
/// may still send: a forgotten campaign never comes back as <c>sending</c>, a cancelled one never changes its numbers.</summary>
[Collection(BrokerCollection.Name)]
public sealed class DeadLetterReplayTests(BrokerFixture broker, ITestOutputHelper output)
{
    /// <summary>Every test's Worker takes one job at a time, in queue order: a campaign posted after a job was queued
    /// completes only once that job was handled, which is how a test knows the Worker had its chance.</summary>
    private static readonly string[] OneJobAtATime = ["--Delivery:ImmediateRetries=0", "--Delivery:Prefetch=1"];

    [Fact]
    public async Task AReplayOfAForgottenCampaignsJob_IsRefusedWithACount_StaysParked_AndNeverBringsItBackAsSending()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var relayFixed = false;
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) && !Volatile.Read(ref relayFixed) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp, OneJobAtATime);
        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        await ParkedAsync(system, 1);

        // History__SummaryDays later: every ledger forgets the finished campaign; its parked job is still there.
        ForgetFinishedCampaigns(system.FrontServices, worker.Services);
        Assert.Equal(HttpStatusCode.NotFound, (await system.Http.GetAsync($"/campaigns/{id}")).StatusCode);

        Volatile.Write(ref relayFixed, true);
        var replay = await ReplayAsync(system);
        output.WriteLine(replay.ToString());
        await SentinelCompletesAsync(system);

        var phantom = await system.Http.GetAsync($"/campaigns/{id}");
        Assert.True(phantom.StatusCode == HttpStatusCode.NotFound, $"the forgotten campaign came back: {await phantom.Content.ReadAsStringAsync()}");
        Assert.DoesNotContain(smtp.Mails, m => m.Recipient == SampleCampaigns.Address(3));
        Assert.Equal(0, replay.GetProperty("jobs").GetInt32());
        Assert.Equal((1, 1), (replay.GetProperty("forgotten").GetProperty("jobs").GetInt32(), replay.GetProperty("forgotten").GetProperty("recipients").GetInt32()));
        await ParkedAsync(system, 1);
    }

    [Fact]
    public async Task AReplayedJobOfACampaignForgottenMeanwhile_GoesBackToTheParkingLot_UnsentAndUnrecorded()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp, OneJobAtATime);
        var id = await system.PostAsync(SampleCampaigns.Personal(4));
        await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        ForgetFinishedCampaigns(system.FrontServices, worker.Services);

        // As a Front moves it when it still knew the campaign (or a Front of an earlier version): marked replayed.
        var job = new DeliveryJob(DeliveryJob.CurrentVersion, id, new MessageTemplate("news@example.com", "Hi", "Hello", null),
            [new JobRecipient(2, SampleCampaigns.Address(2))], Total: 4, Replayed: true);
        await broker.PublishAsync(system.Topology.WorkQueue, JobMessages.Serialize(job));

        await ParkedAsync(system, 1);
        await SentinelCompletesAsync(system);
        // The campaign's four, and the sentinel's one: recipient 2 was not mailed again.
        Assert.Equal(5, smtp.Mails.Count);
        Assert.Single(smtp.Mails, m => m.Recipient == SampleCampaigns.Address(2));
        Assert.Null(system.FrontServices.GetRequiredService<OutcomeLog>().Ledger.Find(id));
        Assert.Null(worker.Services.GetRequiredService<OutcomeLog>().Ledger.Find(id));
        var parked = await broker.GetAsync(system.Topology.DeadQueue);
        Assert.Equal(id, JobMessages.TryRead(parked!.Body.Span, out _)!.CampaignId);
    }

    [Fact]
    public async Task AReplayOfACancelledCampaignsJob_DropsItWithACount_AndTheCampaignsNumbersNeverChange()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await CancelledWithADeadLetterAsync(system, smtp);
        var before = await system.StatusAsync(id);

        var replay = await ReplayAsync(system);
        output.WriteLine(replay.ToString());
        await SentinelCompletesAsync(system);

        var after = await system.StatusAsync(id);
        Assert.Equal((CampaignLedger.Statuses.Cancelled, 4, 1, 5), (after.Status, after.Delivered, after.Failed, after.Pending));
        Assert.Equal((before.Delivered, before.Failed, before.Pending), (after.Delivered, after.Failed, after.Pending));
        Assert.Single((await FailuresAsync(system, id)).EnumerateArray());
        Assert.Equal(0, replay.GetProperty("jobs").GetInt32());
        Assert.Equal((1, 1), (replay.GetProperty("cancelled").GetProperty("jobs").GetInt32(), replay.GetProperty("cancelled").GetProperty("recipients").GetInt32()));
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
    }

    [Fact]
    public async Task AReplayedJobOfACampaignCancelledMeanwhile_IsDroppedUnsent_AndTheCampaignsNumbersNeverChange()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await CancelledWithADeadLetterAsync(system, smtp);

        // Moved by a Front before the campaign was cancelled: the Worker that takes it finds it cancelled.
        var parked = await broker.GetAsync(system.Topology.DeadQueue);
        var job = JobMessages.TryRead(parked!.Body.Span, out _)!;
        await broker.PublishAsync(system.Topology.WorkQueue, JobMessages.Serialize(job with { Attempt = 0, Replayed = true }));
        await SentinelCompletesAsync(system);

        var after = await system.StatusAsync(id);
        Assert.Equal((CampaignLedger.Statuses.Cancelled, 4, 1, 5), (after.Status, after.Delivered, after.Failed, after.Pending));
        Assert.Single((await FailuresAsync(system, id)).EnumerateArray());
        Assert.Equal(1, smtp.AttemptsFor(SampleCampaigns.Address(3)));
    }

    [Fact]
    public async Task GetDeadLetters_SaysPerCampaignHowManyJobsAndRecipientsAreParked_SinceWhen_AndWhetherAReplayWouldMoveThem()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address is var a && (a == SampleCampaigns.Address(3) || a == SampleCampaigns.Address(5)) ? (451, "4.2.1 mailbox busy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp, OneJobAtATime);
        var forgotten = await system.PostAsync(SampleCampaigns.Personal(6));
        await system.WaitForStatusAsync(forgotten, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        ForgetFinishedCampaigns(system.FrontServices, worker.Services);
        var parkedAfter = DateTimeOffset.UtcNow.AddSeconds(-1);
        var known = await system.PostAsync(SampleCampaigns.Personal(4));
        await system.WaitForStatusAsync(known, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        await ParkedAsync(system, 2);

        var answer = JsonDocument.Parse(await system.Http.GetStringAsync("/dead-letters")).RootElement;
        output.WriteLine(answer.ToString());

        Assert.Equal(2, answer.GetProperty("count").GetInt32());
        var campaigns = answer.GetProperty("campaigns").EnumerateArray().ToDictionary(c => c.GetProperty("campaignId").GetString()!);
        Assert.Equal(2, campaigns.Count);
        // Two recipients of the forgotten campaign in one parked job; one of the known one.
        Assert.Equal((1, 2, null, "keep"), Summary(campaigns[forgotten]));
        Assert.Equal((1, 1, CampaignLedger.Statuses.CompletedWithFailures, "replay"), Summary(campaigns[known]));
        var oldest = campaigns[known].GetProperty("oldestParkedAt").GetDateTimeOffset();
        Assert.InRange(oldest, parkedAfter, DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.True(campaigns[forgotten].GetProperty("oldestParkedAt").GetDateTimeOffset() <= oldest);
        Assert.Equal(0, answer.GetProperty("unreadable").GetInt32());
        // Looking changes nothing: both jobs are still parked.
        Assert.Equal(2u, await broker.MessageCountAsync(system.Topology.DeadQueue));

        static (int, int, string?, string?) Summary(JsonElement c) => (c.GetProperty("jobs").GetInt32(), c.GetProperty("recipients").GetInt32(),
            c.TryGetProperty("status", out var status) ? status.GetString() : null, c.GetProperty("onReplay").GetString());
    }

    /// <summary>A campaign of 10 cancelled with 4 delivered, 1 failed and parked (recipient 3), 5 never sent.</summary>
    /// <remarks>Built from the Front's own job, with no Worker running yet: the first half goes to work at the last
    /// delay tier (so recipient 3's 451 parks it at once), the second half never, so the campaign is still sending
    /// when it is cancelled.</remarks>
    private async Task<string> CancelledWithADeadLetterAsync(BulkSystem system, TestSmtpServer smtp)
    {
        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        var posted = await broker.GetAsync(system.Topology.WorkQueue);
        var job = JobMessages.TryRead(posted!.Body.Span, out _)!;
        await broker.PublishAsync(system.Topology.WorkQueue,
            JobMessages.Serialize(job with { Recipients = [.. job.Recipients.Take(5)], Attempt = BulkSystem.TestTiers.Length }));
        await system.StartWorkerAsync(smtp, OneJobAtATime);
        await system.WaitForStatusAsync(id, s => s.Delivered + s.Failed == 5, TimeSpan.FromSeconds(60));
        await ParkedAsync(system, 1);

        (await system.Http.PostAsync($"/campaigns/{id}/cancel", null)).EnsureSuccessStatusCode();
        var cancelled = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Cancelled, TimeSpan.FromSeconds(30));
        Assert.Equal((4, 1, 5), (cancelled.Delivered, cancelled.Failed, cancelled.Pending));
        return id;
    }

    /// <summary>The failure is recorded before its job is parked: the count catches up a moment later.</summary>
    private async Task ParkedAsync(BulkSystem system, uint count) =>
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.DeadQueue) == count, TimeSpan.FromSeconds(30));

    /// <summary>What <c>History__SummaryDays</c> does in every process once that many days have passed.</summary>
    private static void ForgetFinishedCampaigns(params IServiceProvider[] processes)
    {
        foreach (var services in processes)
        {
            Assert.True(services.GetRequiredService<OutcomeLog>().Ledger.Forget(DateTimeOffset.UtcNow.AddDays(1)) > 0);
        }
    }

    /// <summary>Posts a campaign and waits for it: with one job at a time, whatever was queued before it was handled.</summary>
    private static async Task SentinelCompletesAsync(BulkSystem system)
    {
        var sentinel = await system.PostAsync(SampleCampaigns.Personal(1));
        await system.WaitForStatusAsync(sentinel, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
    }

    private static async Task<JsonElement> ReplayAsync(BulkSystem system)
    {
        using var response = await system.Http.PostAsync("/dead-letters/replay", null);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static async Task<JsonElement> FailuresAsync(BulkSystem system, string id) =>
        JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures").Clone();
}
