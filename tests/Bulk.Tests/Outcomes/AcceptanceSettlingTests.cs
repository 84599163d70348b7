using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>
/// A Front whose <c>accepted</c> write went unconfirmed writes <c>voided</c>, and the stream's order decides: the
/// submission is live if the <c>accepted</c> landed first, void otherwise, and a void submission never shows as a
/// campaign (it would stay <c>queued</c> for good, its jobs dropped unsent).
/// </summary>
public sealed class AcceptanceSettlingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void AnAcceptedThatLandedBeforeTheVoided_SettlesTheSubmissionLive_AndTheCampaignStands()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Accepted("c", "a1"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "c", T0.AddSeconds(1), AcceptanceId: "a1"));

        Assert.Equal(AcceptanceState.Live, ledger.Acceptance("a1"));
        Assert.Equal(CampaignLedger.Statuses.Queued, ledger.Find("c")!.Status);
    }

    [Fact]
    public void AnAcceptedThatLandsAfterTheVoided_IsIgnored_NoCampaignAndNoKey()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Voided, "c", T0, AcceptanceId: "a1"));
        ledger.Apply(Accepted("c", "a1", key: "k"));

        Assert.Equal(AcceptanceState.Void, ledger.Acceptance("a1"));
        Assert.Null(ledger.Find("c"));
        Assert.Null(ledger.FindKey("", "k")?.Accepted);
    }

    [Fact]
    public void AWorkersStartedBeforeTheAccepted_StaysLive_AndTheAcceptedIsApplied()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Started, "c", T0, AcceptanceId: "a1"));
        ledger.Apply(Accepted("c", "a1"));
        ledger.Apply(Accepted("c", "a1")); // read twice

        Assert.Equal(AcceptanceState.Live, ledger.Acceptance("a1"));
        Assert.Equal(10, ledger.Find("c")!.Total);
    }

    private static OutcomeEvent Accepted(string campaign, string acceptance, string? key = null) =>
        new(OutcomeType.Accepted, campaign, T0, 10, key, key is null ? null : "hash", AcceptanceId: acceptance, KeyScope: key is null ? null : "");
}
