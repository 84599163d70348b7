using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>Real Worker processes, killed for real, against Postfix's smtp-sink: what reaches the relay is counted there.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CrashTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Recipients = 5000;
    private const int Prefetch = 4;
    private const int Connections = 4;

    private static readonly string[] WorkerSettings = [$"--Delivery:Prefetch={Prefetch}", $"--Smtp:MaxConnections={Connections}"];

    [Fact]
    public async Task KillingAWorkerWithSigkillMidCampaign_LosesNoRecipient_AndDuplicatesStayWithinItsInFlightBound()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var first = await system.StartWorkerProcessAsync(sink.Port, WorkerSettings);

        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));
        await sink.WaitForDistinctAsync(1000, TimeSpan.FromSeconds(60));
        await first.KillAsync();
        var atKill = sink.Recipients().Count;
        var killedAt = DateTimeOffset.UtcNow;

        await system.StartWorkerProcessAsync(sink.Port, WorkerSettings);
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        var mails = await sink.WaitForDistinctAsync(Recipients, TimeSpan.FromSeconds(30));

        var duplicates = mails.Count - mails.Distinct().Count();
        // A Worker has at most this many mails handed to the relay whose outcome is not yet confirmed on the stream.
        var inFlightBound = new Bulk.Worker.Delivery.DeliveryOptions().MaxUnrecorded;
        output.WriteLine($"kill -9 after {atKill} mails; all {Recipients} delivered {(done.CompletedAt!.Value - killedAt).TotalSeconds:F1} s later; " +
            $"duplicates: {duplicates} (in-flight bound {inFlightBound}); ledger saw {done.Delivered} delivered");
        Assert.Equal(Recipients, mails.Distinct().Count());
        Assert.InRange(duplicates, 0, inFlightBound);
        Assert.Equal((Recipients, 0), (done.Delivered, done.Failed));
    }

    [Fact]
    public async Task StoppingAWorkerWithSigtermMidCampaign_DeliversEveryRecipientExactlyOnce()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var first = await system.StartWorkerProcessAsync(sink.Port, WorkerSettings);

        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));
        await sink.WaitForDistinctAsync(1000, TimeSpan.FromSeconds(60));
        await first.TerminateAsync(TimeSpan.FromSeconds(60));
        var atStop = sink.Recipients().Count;
        Assert.Equal(0, first.ExitCode);
        Assert.Contains("every job in hand was finished or handed back", first.Output, StringComparison.Ordinal);

        var second = await system.StartWorkerProcessAsync(sink.Port, WorkerSettings);
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        await sink.WaitForDistinctAsync(Recipients, TimeSpan.FromSeconds(30));
        // Stopped, the second Worker has finished every send it began: the sink now holds all it will ever get.
        await second.TerminateAsync(TimeSpan.FromSeconds(60));
        var mails = sink.Recipients();

        output.WriteLine($"SIGTERM after {atStop} mails; {mails.Count} mails in all for {Recipients} recipients");
        Assert.Equal(Recipients, mails.Count);
        Assert.Equal(Recipients, mails.Distinct().Count());
        Assert.Equal(CampaignLedger.Statuses.Completed, done.Status);
    }
}
