using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Bulk.Tests.Delivery;

/// <summary>A relay that refuses <em>us</em> (MAIL FROM, AUTH, DATA again and again) holds the campaign: nobody is failed or suppressed, and resume finishes it.</summary>
[Collection(BrokerCollection.Name)]
public sealed class RelayRefusalTests(BrokerFixture broker)
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(30);

    public static TheoryData<string, int, string> Refusals => new()
    {
        { "mail", 550, "5.1.1 <news@example.com> sender unknown" },
        { "auth", 530, "5.7.0 Authentication required" },
        { "auth", 535, "5.7.8 Authentication credentials invalid" },
        { "data", 554, "5.7.1 Message rejected: sender not permitted" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task ARelayRefusingTheSender_HoldsTheCampaignWithItsReply_FailsAndSuppressesNobody_AndResumeFinishesItOnceFixed(
        string command, int code, string text)
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var refusing = true;
        (int, string)? Refusal() => Volatile.Read(ref refusing) ? (code, text) : null;
        switch (command)
        {
            case "mail":
                smtp.SenderRule = _ => Refusal();
                break;
            case "auth":
                smtp.AuthRule = Refusal;
                break;
            default:
                smtp.DataRule = _ => Refusal();
                break;
        }

        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(20));
        var held = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Held, Soon);

        Assert.Contains(code.ToString(System.Globalization.CultureInfo.InvariantCulture), held.HeldReason);
        Assert.Equal((0, 0, 0, 20), (held.Delivered, held.Failed, held.Suppressed, held.Pending));
        Assert.Empty(smtp.Mails);
        var suppressions = JsonDocument.Parse(await system.Http.GetStringAsync("/suppressions")).RootElement;
        Assert.Equal(0, suppressions.GetProperty("count").GetInt32());

        // Still held a while later (the wait is the point): nothing is retried into failure behind the operator's back.
        await Task.Delay(TimeSpan.FromSeconds(3));
        var still = await system.StatusAsync(id);
        Assert.Equal((CampaignLedger.Statuses.Held, 0, 0), (still.Status, still.Delivered, still.Failed));

        Volatile.Write(ref refusing, false);
        using (var resume = await system.Http.PostAsync($"/campaigns/{id}/resume", null))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, resume.StatusCode);
        }

        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.Completed, 20, 0), (done.Status, done.Delivered, done.Failed));
        Assert.Equal(20, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
    }

    [Fact]
    public async Task AResumeFromAFrontWhoseClockIsBehindTheWorkers_StillGivesTheRelayAFreshTry()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        var refusing = true;
        smtp.SenderRule = _ => Volatile.Read(ref refusing) ? (550, "5.1.1 <news@example.com> sender unknown") : null;
        // Ten minutes behind the Worker: the Front writes its resume at a time before the Worker's circuit opened.
        await using var system = await BulkSystem.StartFrontAsync(broker,
            services => services.AddSingleton<TimeProvider>(new ShiftedClock(TimeSpan.FromMinutes(-10))));
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(20));
        await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Held, Soon);
        Volatile.Write(ref refusing, false);
        using (var resume = await system.Http.PostAsync($"/campaigns/{id}/resume", null))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, resume.StatusCode);
        }

        // Taken as older than the opening, the resume met the open circuit and the campaign was held again at once.
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished || s.Status == CampaignLedger.Statuses.Held && s.ResumedAt is not null
            && s.HeldAt > s.ResumedAt, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.Completed, 20, 0), (done.Status, done.Delivered, done.Failed));
    }

    private sealed class ShiftedClock(TimeSpan by) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + by;
    }

    [Fact]
    public async Task ARefusedSender_HoldsOnlyItsOwnCampaign_OtherSendersGoOn_AndCancelEndsTheHeldOne()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.SenderRule = sender => sender == "news@example.com" ? (550, "5.7.1 sender rejected") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var refused = await system.PostAsync(SampleCampaigns.Personal(30));
        var other = await system.PostAsync(SampleCampaigns.Personal(30).Replace("news@example.com", "hello@example.com", StringComparison.Ordinal));

        await system.WaitForStatusAsync(refused, s => s.Status == CampaignLedger.Statuses.Held, Soon);
        var delivered = await system.WaitForStatusAsync(other, s => s.IsFinished, Soon);
        Assert.Equal((CampaignLedger.Statuses.Completed, 30), (delivered.Status, delivered.Delivered));

        using (var cancel = await system.Http.PostAsync($"/campaigns/{refused}/cancel", null))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, cancel.StatusCode);
        }

        var cancelled = await system.WaitForStatusAsync(refused, s => s.IsFinished, Soon);
        Assert.Equal((CampaignLedger.Statuses.Cancelled, 0, 0, null), (cancelled.Status, cancelled.Delivered, cancelled.Failed, cancelled.HeldReason));
        Assert.DoesNotContain(smtp.Mails, m => m.EnvelopeFrom == "news@example.com");
        // The held campaign's work is dropped, not left circling on the broker.
        await Poll.UntilAsync(async () => await system.WorkQueueDepthAsync() == 0
            && await broker.MessageCountAsync(system.Topology.PausedQueue) == 0, Soon);
    }

    [Fact]
    public async Task OnlyARecipientRefusal_FailsThatRecipient_AndOnly511AtRcptSuppressesIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(2) ? (550, "5.1.1 no such user") : null;
        // A content refusal of one message among good ones is not the sender's problem: deferred, never a hold.
        smtp.DataRule = address => address == SampleCampaigns.Address(5) ? (554, "5.6.0 content rejected") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, "--Delivery:ImmediateRetries=0");

        var id = await system.PostAsync(SampleCampaigns.Personal(10));
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));

        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 8, 2), (done.Status, done.Delivered, done.Failed));
        var failures = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures");
        Assert.Contains(failures.EnumerateArray(), f => f.GetProperty("index").GetInt32() == 2 && !f.GetProperty("deadLettered").GetBoolean());
        Assert.Contains(failures.EnumerateArray(), f => f.GetProperty("index").GetInt32() == 5 && f.GetProperty("deadLettered").GetBoolean());
        using var suppressed = await system.Http.GetAsync($"/suppressions/{SampleCampaigns.Address(2)}");
        Assert.Equal(System.Net.HttpStatusCode.OK, suppressed.StatusCode);
        using var notSuppressed = await system.Http.GetAsync($"/suppressions/{SampleCampaigns.Address(5)}");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, notSuppressed.StatusCode);
    }

    public static TheoryData<string> SinkFaults => ["mail", "auth", "data"];

    /// <summary>Postfix's smtp-sink answering a command with "500 5.3.0 Error: command failed": a real relay's refusal.</summary>
    [Theory]
    [MemberData(nameof(SinkFaults))]
    public async Task SmtpSinkRefusingMailFromAuthOrData_HoldsTheCampaign_WithNobodyFailed(string command)
    {
        await using var sink = await SmtpSink.StartAsync("-f", command);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerOnAsync(sink.Port,
            command == "auth" ? [$"--Smtp:Username={TestSmtpServer.Username}", $"--Smtp:Password={TestSmtpServer.Password}"] : []);

        var id = await system.PostAsync(SampleCampaigns.Personal(20));
        var held = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Held, Soon);

        Assert.Contains("500", held.HeldReason);
        Assert.Equal((0, 0, 0, 20), (held.Delivered, held.Failed, held.Suppressed, held.Pending));
        Assert.Empty(sink.Recipients());
    }
}
