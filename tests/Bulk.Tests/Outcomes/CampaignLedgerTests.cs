using Bulk.Broker.Outcomes;
using Bulk.Broker.Suppressions;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;


namespace Bulk.Tests.Outcomes;

public sealed class CampaignLedgerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static OutcomeEvent Accepted(string id, int total, string? key = null) =>
        new(OutcomeType.Accepted, id, T0, total, key, key is null ? null : "hash");

    private static OutcomeEvent Progress(string id, int total, int seconds, int[]? delivered = null, FailedRecipient[]? failed = null, DeferredRecipient[]? deferred = null) =>
        new(OutcomeType.Progress, id, T0.AddSeconds(seconds), total, Delivered: delivered, Failed: failed, Deferred: deferred);

    [Fact]
    public void ACampaignGoesFromQueuedToSendingToCompleted_CountingEachRecipientOnce()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 4));
        Assert.Equal(CampaignLedger.Statuses.Queued, ledger.Find("c")!.Status);

        ledger.Apply(Progress("c", 4, 1, delivered: [0, 1]));
        ledger.Apply(Progress("c", 4, 2, delivered: [1])); // a duplicate delivery
        var sending = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, 2, 2), (sending.Status, sending.Delivered, sending.Pending));

        ledger.Apply(Progress("c", 4, 3, delivered: [2, 3]));
        var done = ledger.Find("c")!;
        Assert.Equal(CampaignLedger.Statuses.Completed, done.Status);
        Assert.Equal((4, 0, 0), (done.Delivered, done.Failed, done.Pending));
        Assert.Equal(T0.AddSeconds(1), done.FirstDeliveryAt);
        Assert.Equal(T0.AddSeconds(3), done.CompletedAt);
        Assert.Equal(2.0, done.RatePerSecond);
        Assert.Equal(T0, done.CreatedAt);
    }

    [Fact]
    public void SuppressedRecipients_AreDoneAndCountedApart_AndTheCampaignCompletesWithThem()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 3));

        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0.AddSeconds(1), 3, Delivered: [0], Suppressed: [2]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0.AddSeconds(2), 3, Suppressed: [2])); // read twice
        var sending = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, 1, 1, 1), (sending.Status, sending.Delivered, sending.Suppressed, sending.Pending));
        Assert.Equal(RecipientState.Done, ledger.State("c", 2));
        Assert.Equal(RecipientState.Pending, ledger.State("c", 1));

        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0.AddSeconds(3), 3, Delivered: [1]));
        var done = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Completed, 2, 0, 1, 0), (done.Status, done.Delivered, done.Failed, done.Suppressed, done.Pending));
    }

    [Fact]
    public void TheSuppressionList_KeepsTheFirstReason_ComparesAddressesIgnoringCase_AndForgetsRemovedOnes()
    {
        var list = new SuppressionList();

        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "Bea@Example.org", T0, SuppressionReasons.Unsubscribed, "c1"));
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "bea@example.org", T0.AddSeconds(1), SuppressionReasons.HardBounce, "c2"));
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "ann@example.org", T0.AddSeconds(2), SuppressionReasons.Operator));
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "cid@example.org", T0.AddSeconds(3), SuppressionReasons.Operator));
        list.Apply(new SuppressionEvent(SuppressionType.Unsuppressed, "CID@example.org", T0.AddSeconds(4)));

        Assert.Equal((SuppressionReasons.Unsubscribed, "c1"), (list.Find("BEA@EXAMPLE.ORG")!.Reason, list.Find("bea@example.org")!.CampaignId));
        Assert.Null(list.Find("cid@example.org"));
        var (page, count) = list.Page(0, 10);
        Assert.Equal(2, count);
        Assert.Equal(["ann@example.org", "Bea@Example.org"], page.Select(p => p.Email));
    }

    [Fact]
    public void FailuresAndDeferrals_AreCounted_AndAFailedRecipientIsDone()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 3));
        ledger.Apply(Progress("c", 3, 1, deferred: [new DeferredRecipient(2, 1, "451 later")]));
        Assert.Equal((CampaignLedger.Statuses.Sending, 1), (ledger.Find("c")!.Status, ledger.Find("c")!.Deferred));

        ledger.Apply(Progress("c", 3, 2, delivered: [0], failed: [new FailedRecipient(1, "b@x.org", "550 no such user")]));
        Assert.True(ledger.IsDone("c", 1));
        Assert.False(ledger.IsDone("c", 2));

        ledger.Apply(Progress("c", 3, 3, delivered: [2]));
        var done = ledger.Find("c")!;
        Assert.Equal(CampaignLedger.Statuses.CompletedWithFailures, done.Status);
        Assert.Equal((1, 0), (done.Failed, done.Deferred));
        var (page, count) = ledger.Failures("c", 0, 10)!.Value;
        Assert.Equal(1, count);
        Assert.Equal("550 no such user", page.Single().Reply);
    }

    [Fact]
    public void OutcomesBeforeTheAcceptedEntry_StillCountAgainstTheJobsTotal()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Progress("c", 2, 1, delivered: [1]));
        ledger.Apply(Accepted("c", 2));

        var status = ledger.Find("c")!;
        Assert.Equal((2, 1, 1), (status.Total, status.Delivered, status.Pending));
    }

    [Fact]
    public void ReplayingDeadLetteredRecipients_ReopensThem()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 2));
        ledger.Apply(Progress("c", 2, 1, delivered: [0], failed: [new FailedRecipient(1, "b@x.org", "451 forever", DeadLettered: true)]));
        Assert.Equal(CampaignLedger.Statuses.CompletedWithFailures, ledger.Find("c")!.Status);

        ledger.Apply(new OutcomeEvent(OutcomeType.Replayed, "c", T0.AddSeconds(5), 2, Replayed: [1]));
        var reopened = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, 0, 1), (reopened.Status, reopened.Failed, reopened.Pending));
        Assert.False(ledger.IsDone("c", 1));
        Assert.True(ledger.IsDone("c", 0));

        ledger.Apply(Progress("c", 2, 6, delivered: [1]));
        Assert.Equal(CampaignLedger.Statuses.Completed, ledger.Find("c")!.Status);
    }

    [Fact]
    public void ReplayingARecipientWhoseIndexRunsPastTheTotal_ReopensItAndNoOther()
    {
        // Posted as five, two duplicates dropped: three recipients at positions 0, 2 and 4.
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 3));
        ledger.Apply(Progress("c", 3, 1, delivered: [0, 2], failed: [new FailedRecipient(4, "e@x.org", "451 forever", DeadLettered: true)]));
        Assert.Equal(CampaignLedger.Statuses.CompletedWithFailures, ledger.Find("c")!.Status);

        ledger.Apply(new OutcomeEvent(OutcomeType.Replayed, "c", T0.AddSeconds(5), 3, Replayed: [4]));
        var reopened = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, 2, 0, 1), (reopened.Status, reopened.Delivered, reopened.Failed, reopened.Pending));
        Assert.False(ledger.IsDone("c", 4));
        Assert.True(ledger.IsDone("c", 0));
        Assert.True(ledger.IsDone("c", 2));

        ledger.Apply(Progress("c", 3, 6, delivered: [4]));
        Assert.Equal((CampaignLedger.Statuses.Completed, 3), (ledger.Find("c")!.Status, ledger.Find("c")!.Delivered));
    }

    [Fact]
    public void AHeldCampaign_KeepsItsRecipientsPending_UntilResumedOrCancelled()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", 3));
        ledger.Apply(Progress("c", 3, 1, delivered: [0]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Held, "c", T0.AddSeconds(2), 3, Reason: "550 5.7.1 sender rejected"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Held, "c", T0.AddSeconds(3), 3, Reason: "a later reply"));

        var held = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Held, "550 5.7.1 sender rejected", T0.AddSeconds(2), 2), (held.Status, held.HeldReason, held.HeldAt, held.Pending));
        Assert.Equal(RecipientState.Held, ledger.State("c", 1));
        Assert.Equal(RecipientState.Done, ledger.State("c", 0));

        ledger.Apply(new OutcomeEvent(OutcomeType.Resumed, "c", T0.AddSeconds(9), 3));
        var resumed = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, null, T0.AddSeconds(9)), (resumed.Status, resumed.HeldReason, resumed.ResumedAt));
        Assert.Equal(RecipientState.Pending, ledger.State("c", 1));

        ledger.Apply(new OutcomeEvent(OutcomeType.Held, "c", T0.AddSeconds(10), 3, Reason: "530 authentication required"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Cancelled, "c", T0.AddSeconds(11), 3));
        var cancelled = ledger.Find("c")!;
        Assert.Equal((CampaignLedger.Statuses.Cancelled, null), (cancelled.Status, cancelled.HeldReason));
        Assert.Equal(RecipientState.Cancelled, ledger.State("c", 1));
    }

    [Fact]
    public void IdempotencyKeysAreRemembered_AndTheFirstCampaignWins()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("first", 3, "k1"));
        ledger.Apply(Accepted("second", 3, "k1"));

        Assert.Equal("first", ledger.FindKey("", "k1")!.Accepted!.CampaignId);
        Assert.Null(ledger.FindKey("", "k2"));
    }

    [Fact]
    public async Task AMarker_ReleasesWhoeverWaitsForIt_AndNoOneElse()
    {
        var markers = new Bulk.Broker.Streams.MarkerWaiters();
        var waiting = markers.WaitAsync("m1");
        var other = markers.WaitAsync("m2");
        Assert.False(waiting.IsCompleted);

        markers.Seen("m1");

        await waiting.WaitAsync(TimeSpan.FromSeconds(1));
        Assert.False(other.IsCompleted);
    }

    [Fact]
    public void AFinishedCampaign_KeepsItsCountsButNotItsBits()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("big", 1_000_000));
        var before = GC.GetAllocatedBytesForCurrentThread();
        ledger.Apply(Progress("big", 1_000_000, 1, delivered: [0]));
        var bits = GC.GetAllocatedBytesForCurrentThread() - before;

        // One bit per recipient: about 125 KB for a million, not an object per mail.
        Assert.InRange(bits, 100_000, 200_000);
        ledger.Apply(Progress("big", 1_000_000, 2, delivered: [.. Enumerable.Range(1, 999_999)]));
        Assert.Equal(CampaignLedger.Statuses.Completed, ledger.Find("big")!.Status);
        Assert.True(ledger.IsDone("big", 123_456));
    }
}
