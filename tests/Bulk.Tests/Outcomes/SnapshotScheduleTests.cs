using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bulk.Tests.Outcomes;

/// <summary>When snapshots are written (issue #25, item 7): after so many entries, not only after so many seconds, and
/// on a graceful stop, so that a restarted process reads only what came after.</summary>
[Collection(BrokerCollection.Name)]
public sealed class SnapshotScheduleTests(BrokerFixture broker, ITestOutputHelper output)
{
    // The timer never fires within a test: whatever snapshot appears was written for another reason.
    private const string NoTimer = "--History:SnapshotSeconds=86400";

    [Fact]
    public async Task AProcessThatFoldedSnapshotEntries_WritesASnapshot_WithoutWaitingForSnapshotSeconds()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, NoTimer, "--History:SnapshotEntries=30");
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));
        var campaign = $"entries-{Guid.NewGuid():N}";
        await outcomes.RecordAsync([.. Enumerable.Range(0, 40).Select(i =>
            new OutcomeEvent(OutcomeType.Progress, campaign, DateTimeOffset.UtcNow, 1000, Delivered: [i]))], CancellationToken.None);

        var snapshot = await LatestSnapshotAsync(outcomes.Snapshots, found => found is { Offset: >= 30 });

        output.WriteLine($"a snapshot covering offsets before {snapshot?.Offset} ({snapshot?.Bytes} bytes)");
        Assert.NotNull(snapshot);
        Assert.True(snapshot.Offset >= 30, $"the snapshot covers offsets before {snapshot.Offset}: not the 30 entries folded");
    }

    [Fact]
    public async Task WithFewEntries_TheTimerStillWritesASnapshot()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--History:SnapshotSeconds=1");
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));
        await outcomes.RecordAsync([new OutcomeEvent(OutcomeType.Progress, $"timer-{Guid.NewGuid():N}", DateTimeOffset.UtcNow, 10, Delivered: [1])],
            CancellationToken.None);

        var snapshot = await LatestSnapshotAsync(outcomes.Snapshots, found => found is { Offset: >= 1 });

        Assert.NotNull(snapshot);
    }

    [Fact]
    public async Task ASigtermedFront_WritesASnapshot_AndTheRestartedOneReplaysNothingOfWhatCameBefore()
    {
        await using var system = BulkSystem.On(broker.Uri, broker);
        var front = await system.StartFrontProcessAsync(NoTimer);
        string[] ids = [await system.PostAsync(SampleCampaigns.Personal(3)), await system.PostAsync(SampleCampaigns.Personal(4))];

        await front.TerminateAsync(TimeSpan.FromSeconds(60));
        output.WriteLine(front.Output);
        await system.StartFrontAsync(NoTimer);
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));

        output.WriteLine($"loaded {outcomes.LoadedSnapshot}; then read {outcomes.StartupEntries} entries");
        Assert.NotNull(outcomes.LoadedSnapshot);
        Assert.Equal(0, outcomes.StartupEntries);
        foreach (var (id, total) in ids.Zip([3, 4]))
        {
            Assert.Equal((CampaignLedger.Statuses.Queued, total), ((await system.StatusAsync(id)).Status, (await system.StatusAsync(id)).Total));
        }
    }

    [Fact]
    public async Task ASigtermedWorker_WritesASnapshot_AndTheRestartedOneReplaysNothingOfWhatCameBefore()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker, NoTimer);
        var worker = await system.StartWorkerProcessAsync(sink.Port, NoTimer);
        var id = await system.PostAsync(SampleCampaigns.Personal(20));
        await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        await worker.TerminateAsync(TimeSpan.FromSeconds(60));
        var restarted = await system.StartWorkerOnAsync(sink.Port, NoTimer);
        var outcomes = restarted.Services.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));

        output.WriteLine($"loaded {outcomes.LoadedSnapshot}; then read {outcomes.StartupEntries} entries");
        Assert.NotNull(outcomes.LoadedSnapshot);
        Assert.Equal(0, outcomes.StartupEntries);
        Assert.Equal(20, outcomes.Ledger.Find(id)?.Delivered);
    }

    /// <summary>Reads the latest snapshot until <paramref name="enough"/> holds of it, for at most 30 s.</summary>
    private static async Task<LoadedSnapshot?> LatestSnapshotAsync(SnapshotStore store, Func<LoadedSnapshot?, bool> enough)
    {
        LoadedSnapshot? latest = null;
        await Poll.UntilAsync(async () =>
        {
            latest = (await store.ReadLatestAsync(CancellationToken.None))?.Snapshot;
            return enough(latest);
        }, TimeSpan.FromSeconds(30));
        return latest;
    }
}
