using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Campaigns;

namespace Bulk.Tests.Outcomes;

/// <summary>How the ledger settles a submission (first of <c>started</c> and <c>voided</c> wins) and remembers keys per caller.</summary>
public sealed class AcceptanceLedgerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static OutcomeEvent Pending(string id, string acceptance, string key, string scope, string hash = "h1", int total = 3) =>
        new(OutcomeType.Pending, id, T0, total, key, hash, AcceptanceId: acceptance, KeyScope: scope);

    private static OutcomeEvent Started(string id, string acceptance) => new(OutcomeType.Started, id, T0, AcceptanceId: acceptance);

    private static OutcomeEvent Voided(string id, string acceptance) => new(OutcomeType.Voided, id, T0, AcceptanceId: acceptance);

    [Fact]
    public void TheFirstOfStartedAndVoided_SettlesASubmission_AndWhatComesAfterChangesNothing()
    {
        var ledger = new CampaignLedger();
        Assert.Equal(AcceptanceState.Undecided, ledger.Acceptance("a1"));

        ledger.Apply(Started("c", "a1"));
        ledger.Apply(Voided("c", "a1"));
        ledger.Apply(Voided("c", "a2"));
        ledger.Apply(Started("c", "a2"));
        ledger.Apply(Started("c", "a2")); // a second Worker, or a tail reading again

        Assert.Equal((AcceptanceState.Live, AcceptanceState.Void, AcceptanceState.Undecided),
            (ledger.Acceptance("a1"), ledger.Acceptance("a2"), ledger.Acceptance("a3")));
    }

    [Fact]
    public void APendingSubmission_IsNoCampaignYet_AndShowsUnderItsKeyWithItsState()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Pending("c", "a1", "k", "s1"));
        ledger.Apply(Pending("c", "a1", "k", "s1")); // read twice: one submission
        Assert.Null(ledger.Find("c"));
        Assert.Equal([AcceptanceState.Undecided], ledger.FindKey("s1", "k")!.Submissions.Select(s => s.State));

        ledger.Apply(Voided("c", "a1"));
        ledger.Apply(Pending("c", "a2", "k", "s1", hash: "h2", total: 5));
        ledger.Apply(Started("c", "a2"));

        var record = ledger.FindKey("s1", "k")!;
        Assert.Null(record.Accepted);
        Assert.Equal([("a1", "h1", 3, AcceptanceState.Void), ("a2", "h2", 5, AcceptanceState.Live)],
            record.Submissions.Select(s => (s.Request.AcceptanceId, s.Request.RequestHash, s.Request.Total, s.State)));

        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 5, "k", "h2", AcceptanceId: "a2", KeyScope: "s1"));
        Assert.Equal(("c", "a2"), (ledger.FindKey("s1", "k")!.Accepted!.CampaignId, ledger.FindKey("s1", "k")!.Accepted!.AcceptanceId));
        Assert.Equal(5, ledger.Find("c")!.Total);
    }

    [Fact]
    public void KeysAreScopedPerCaller_AndEntriesWithoutAScopeBelongToTheEmptyOne()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(Pending("c1", "a1", "order-1", "caller-a"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c0", T0, 2, "order-1", "h0")); // an earlier version's entry

        Assert.Equal("c1", ledger.FindKey("caller-a", "order-1")!.Submissions.Single().Request.CampaignId);
        Assert.Null(ledger.FindKey("caller-b", "order-1"));
        Assert.Equal("c0", ledger.FindKey("", "order-1")!.Accepted!.CampaignId);
        Assert.Empty(ledger.FindKey("", "order-1")!.Submissions);
    }

    [Fact]
    public void AKeysCampaignId_IsTheSameOnEveryTry_AndDiffersPerCaller()
    {
        var id = CampaignReader.KeyedCampaignId("caller-a", "order-1");

        Assert.Equal(id, CampaignReader.KeyedCampaignId("caller-a", "order-1"));
        Assert.NotEqual(id, CampaignReader.KeyedCampaignId("caller-b", "order-1"));
        Assert.NotEqual(id, CampaignReader.KeyedCampaignId("", "order-1"));
        Assert.Matches("^[0-9a-f]{32}$", id); // the shape of a generated id
    }

    [Fact]
    public void TheNewEntries_OnTheWire()
    {
        var pending = JsonSerializer.Serialize(Pending("c", "a1", "k", "s1"), BulkJson.Default.OutcomeEvent);
        var voided = JsonSerializer.Serialize(Voided("c", "a1"), BulkJson.Default.OutcomeEvent);
        var job = JsonSerializer.Serialize(new DeliveryJob(1, "c", new MessageTemplate("a@example.com", "s", "t", null), [], AcceptanceId: "a1"),
            BulkJson.Default.DeliveryJob);

        Assert.Equal("""{"type":"pending","campaignId":"c","at":"2026-11-25T12:00:00+00:00","total":3,"idempotencyKey":"k","requestHash":"h1","duplicatesDropped":0,"acceptanceId":"a1","keyScope":"s1"}""", pending);
        Assert.Equal("""{"type":"voided","campaignId":"c","at":"2026-11-25T12:00:00+00:00","total":0,"duplicatesDropped":0,"acceptanceId":"a1"}""", voided);
        Assert.EndsWith(""","acceptanceId":"a1"}""", job);
        Assert.Equal(AcceptanceState.Void, Read(voided));
    }

    private static AcceptanceState Read(string json)
    {
        var ledger = new CampaignLedger();
        ledger.Apply(JsonSerializer.Deserialize(json, BulkJson.Default.OutcomeEvent)!);
        return ledger.Acceptance("a1");
    }
}
