using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>What a replay of the parking lot may do to a campaign, decided by the ledger alone (no broker).</summary>
public sealed class ParkedJobFateTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static readonly FailedRecipient Parked = new(1, "b@x.org", "451 forever", DeadLettered: true);

    [Fact]
    public void AParkedJob_IsReplayedWhileItsCampaignIsKnown_DroppedOnceItIsCancelled_AndKeptParkedOnceItIsForgotten()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "finished", T0, 2));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "finished", T0.AddSeconds(1), 2, Delivered: [0], Failed: [Parked]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "cancelled", T0, 3));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "cancelled", T0.AddSeconds(1), 3, Delivered: [0], Failed: [Parked]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Cancelled, "cancelled", T0.AddSeconds(2), 3));

        Assert.Equal(ParkedJobFate.Replay, ledger.FateOfParked("finished"));
        Assert.Equal(ParkedJobFate.Drop, ledger.FateOfParked("cancelled"));
        Assert.Equal(ParkedJobFate.KeepParked, ledger.FateOfParked("never-seen"));

        Assert.Equal(2, ledger.Forget(T0.AddDays(1)));
        Assert.Equal(ParkedJobFate.KeepParked, ledger.FateOfParked("finished"));
        Assert.Equal(ParkedJobFate.KeepParked, ledger.FateOfParked("cancelled"));
    }

    [Fact]
    public void AReplayedEntryOfACancelledCampaign_ChangesNoneOfItsNumbers()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 3));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0.AddSeconds(1), 3, Delivered: [0], Failed: [Parked]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Cancelled, "c", T0.AddSeconds(2), 3));
        var cancelled = ledger.Find("c")!;

        // As a Worker of an earlier version writes it before dropping the job.
        ledger.Apply(new OutcomeEvent(OutcomeType.Replayed, "c", T0.AddSeconds(3), 3, Replayed: [1]));

        var after = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Cancelled, 1, 1, 1), (after.Status, after.Delivered, after.Failed, after.Pending));
        Assert.Equal(cancelled.Version, after.Version);
        Assert.True(ledger.IsDone("c", 1));
        Assert.Equal(1, ledger.Failures("c", 0, 10)!.Value.Count);
    }

    [Fact]
    public void AReplayedEntryOfAForgottenCampaign_DoesNotBringItBack()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 2));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0.AddSeconds(1), 2, Delivered: [0], Failed: [Parked]));
        ledger.Forget(T0.AddDays(1));

        ledger.Apply(new OutcomeEvent(OutcomeType.Replayed, "c", T0.AddDays(2), 2, Replayed: [1]));

        Assert.Null(ledger.Find("c"));
        Assert.Equal(0, ledger.Count);
    }

    [Fact]
    public void APhantomThatAnEarlierVersionRecreatedFromAReplay_IsForgottenOnceItsLastDeliveryIsPastTheCutoff_ALiveCampaignIsNot()
    {
        var ledger = new CampaignLedger();
        // No accepted entry: recreated from the progress of a forgotten campaign's replayed job, one of ten done.
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "phantom", T0, 10, Delivered: [3]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "live", T0, 10));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "live", T0, 10, Delivered: [0]));
        // Accepted entry cut by retention, still sending: its last delivery is recent.
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "cut", T0.AddDays(3), 10, Delivered: [0]));
        Assert.Equal(CampaignLedger.Statuses.Sending, ledger.Find("phantom")!.Status);

        Assert.Equal(0, ledger.Forget(T0));
        Assert.Equal(1, ledger.Forget(T0.AddDays(1)));

        Assert.Null(ledger.Find("phantom"));
        Assert.NotNull(ledger.Find("live"));
        Assert.NotNull(ledger.Find("cut"));
    }
}
