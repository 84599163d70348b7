using Bulk.Broker.Streams;

namespace Bulk.Tests.Outcomes;

/// <summary>The snapshot schedule alone: the timer keeps coming round, and enough entries call a round early.</summary>
public sealed class SnapshotScheduleUnitTests
{
    [Fact]
    public async Task TheTimer_ComesRoundAgainAndAgain()
    {
        var schedule = new SnapshotSchedule(new HistoryOptions { SnapshotSeconds = 1 });
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.False(await schedule.WaitAsync(bound.Token));
        Assert.False(await schedule.WaitAsync(bound.Token));
        Assert.False(await schedule.WaitAsync(bound.Token));
    }

    [Fact]
    public async Task EnoughEntries_CallARound_BeforeTheTimer()
    {
        var schedule = new SnapshotSchedule(new HistoryOptions { SnapshotSeconds = 86_400, SnapshotEntries = 3 });
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        schedule.Fold();
        schedule.Fold();
        schedule.Fold();
        Assert.True(await schedule.WaitAsync(bound.Token));
        schedule.Written(3);
        schedule.Fold();
        schedule.Fold();
        schedule.Fold();
        Assert.True(await schedule.WaitAsync(bound.Token));
    }
}
