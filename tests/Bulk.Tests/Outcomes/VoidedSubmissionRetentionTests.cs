using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>A submission that was voided (its publish never confirmed, and no retry made it live) is forgotten with its
/// key after <c>History__SummaryDays</c>, like a finished campaign: it is not kept in memory and in every snapshot for good.</summary>
public sealed class VoidedSubmissionRetentionTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void AKeyWhoseEverySubmissionWasVoided_AndAnUnkeyedVoidedSubmission_AreForgottenAfterTheSummaryRetention()
    {
        var ledger = new CampaignLedger();
        // A keyed POST whose publish was not confirmed: voided, never retried.
        ledger.Apply(new OutcomeEvent(OutcomeType.Pending, "keyed", T0, 2, "key-void", "h", AcceptanceId: "a1"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "keyed", T0.AddSeconds(5), AcceptanceId: "a1"));
        // The same without a key.
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "unkeyed", T0.AddSeconds(5), AcceptanceId: "a2"));
        // Voided later: kept for now.
        ledger.Apply(new OutcomeEvent(OutcomeType.Pending, "recent", T0.AddDays(2), 2, "key-recent", "h", AcceptanceId: "a3"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "recent", T0.AddDays(2), AcceptanceId: "a3"));
        // Voided, then published afresh and live: the key stays with its campaign.
        ledger.Apply(new OutcomeEvent(OutcomeType.Pending, "retried", T0, 1, "key-retried", "h", AcceptanceId: "a4"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "retried", T0, AcceptanceId: "a4"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Pending, "retried", T0, 1, "key-retried", "h", AcceptanceId: "a5"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Started, "retried", T0, AcceptanceId: "a5"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "retried", T0, 1, "key-retried", "h", AcceptanceId: "a5"));

        ledger.Forget(T0.AddDays(1));

        Assert.Null(ledger.FindKey("", "key-void"));
        Assert.Equal(AcceptanceState.Undecided, ledger.Acceptance("a1"));
        Assert.Equal(AcceptanceState.Undecided, ledger.Acceptance("a2"));
        Assert.Equal(AcceptanceState.Void, ledger.Acceptance("a3"));
        Assert.NotNull(ledger.FindKey("", "key-recent"));
        Assert.Equal([AcceptanceState.Void, AcceptanceState.Live], ledger.FindKey("", "key-retried")!.Submissions.Select(s => s.State));

        // When a submission was voided survives a snapshot.
        var read = new CampaignLedger();
        SnapshotStore.Decode(SnapshotStore.Encode(0, ledger.WriteTo), read.ReadFrom);
        Assert.NotNull(read.FindKey("", "key-recent"));
        read.Forget(T0.AddDays(3));
        Assert.Null(read.FindKey("", "key-recent"));
        Assert.Equal(AcceptanceState.Undecided, read.Acceptance("a3"));
    }
}
