using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Broker.Suppressions;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;
using FsCheck;
using FsCheck.Fluent;

namespace Bulk.Tests.Outcomes;

/// <summary>A snapshot taken anywhere in a history, plus the rest of the history, gives what the whole history gives.</summary>
public sealed class SnapshotEquivalenceTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.FromHours(1));
    private static readonly string[] Campaigns = ["c0", "c1", "c2", "c3"];
    private const int MaxTotal = 24;

    private static Gen<int[]> Indexes(int max) => Gen.ListOf(Gen.Choose(0, max)).Select(list => list.Distinct().Take(8).ToArray());

    private static Gen<Func<int, OutcomeEvent>> OneOutcome() =>
        from id in Gen.Elements(Campaigns)
        from total in Gen.Choose(1, MaxTotal)
        from kind in Gen.Frequency(
            (3, Gen.Constant(OutcomeType.Accepted)), (10, Gen.Constant(OutcomeType.Progress)), (2, Gen.Constant(OutcomeType.Paused)),
            (2, Gen.Constant(OutcomeType.Resumed)), (1, Gen.Constant(OutcomeType.Held)), (1, Gen.Constant(OutcomeType.Cancelled)),
            (1, Gen.Constant(OutcomeType.Replayed)), (2, Gen.Constant(OutcomeType.Pending)), (1, Gen.Constant(OutcomeType.Started)),
            (1, Gen.Constant(OutcomeType.Voided)))
        from delivered in Indexes(MaxTotal + 2)
        from failed in Indexes(MaxTotal)
        from suppressed in Indexes(MaxTotal)
        from deferred in Indexes(MaxTotal)
        from deadLettered in Gen.Elements(true, false)
        from key in Gen.Elements<string?>(null, "k1", "k2")
        from acceptance in Gen.Elements<string?>(null, "a1", "a2", "a3")
        from scope in Gen.Elements<string?>(null, "", "s1")
        from subject in Gen.Elements<string?>(null, "", "Hello {{ name }}", "<img src=x onerror=alert(1)>", "Grüße 🎉")
        from sender in Gen.Elements<string?>(null, "News <news@example.com>", "a@example.org")
        select (Func<int, OutcomeEvent>)(second => new OutcomeEvent(kind, id, T0.AddSeconds(second), total,
            IdempotencyKey: kind is OutcomeType.Accepted or OutcomeType.Pending ? key : null, RequestHash: key is null ? null : $"h-{id}",
            Delivered: kind == OutcomeType.Progress ? delivered : null,
            Failed: kind == OutcomeType.Progress ? [.. failed.Select(i => new FailedRecipient(i, $"r{i}@example.org", $"550 no {i}", deadLettered))] : null,
            Suppressed: kind == OutcomeType.Progress ? suppressed : null,
            Deferred: kind == OutcomeType.Progress ? [.. deferred.Select(i => new DeferredRecipient(i, 1, "421 later"))] : null,
            Replayed: kind == OutcomeType.Replayed ? failed : null,
            Reason: kind == OutcomeType.Held ? "550 sender refused" : null,
            AcceptanceId: acceptance, KeyScope: kind is OutcomeType.Accepted or OutcomeType.Pending ? scope : null,
            Subject: kind == OutcomeType.Accepted ? subject : null, From: kind == OutcomeType.Accepted ? sender : null));

    private static Arbitrary<(OutcomeEvent[] History, int Cut)> OutcomeHistories() =>
        (from makers in Gen.ListOf(OneOutcome())
         from cut in Gen.Choose(0, makers.Count)
         select (makers.Select((make, i) => make(i)).ToArray(), cut)).ToArbitrary();

    [Fact]
    public void TheLedger_FromASnapshotCutAnywhere_PlusTheRest_IsTheLedgerOfTheWholeHistory()
    {
        var cuts = new Dictionary<string, int>();
        var named = 0;
        var property = Prop.ForAll(OutcomeHistories(), ((OutcomeEvent[] History, int Cut) generated) =>
        {
            var (history, cut) = generated;
            var whole = new CampaignLedger();
            foreach (var e in history)
            {
                whole.Apply(e);
            }

            var before = new CampaignLedger();
            foreach (var e in history[..cut])
            {
                before.Apply(e);
            }

            Count(cuts, Situation(before));
            named += before.Recent(10).Any(s => s.Subject is { Length: > 0 } && s.From is not null) ? 1 : 0;
            var resumed = new CampaignLedger();
            // What the snapshot covered of the stream travels with it (the retention warning projects from it).
            var covered = SnapshotStore.Decode(SnapshotStore.Encode(cut * 150L, before.WriteTo), resumed.ReadFrom);
            foreach (var e in history[cut..])
            {
                resumed.Apply(e);
            }

            return covered == cut * 150L && Observe(resumed) == Observe(whole);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithQuietOnSuccess(true), property);

        // The generated histories did cut campaigns in every state, not only the easy ones.
        Assert.All(new[] { "sending", "paused", "cancelled", "held", "completed" }, state => Assert.True(cuts.GetValueOrDefault(state) > 20, $"{state}: {cuts.GetValueOrDefault(state)}"));
        // And snapshots carried campaigns known by their subject and sender.
        Assert.True(named > 200, $"{named} snapshots held a campaign with a subject and sender");
    }

    [Fact]
    public void TheSuppressionList_FromASnapshotCutAnywhere_PlusTheRest_IsTheListOfTheWholeHistory()
    {
        string[] pool = ["a@example.org", "A@Example.org", "b@example.org", "ç@exämple.org", "c@example.org", "d@EXAMPLE.org", "\"x@y\"@example.org", "postmaster"];
        var entries =
            from type in Gen.Frequency((3, Gen.Constant(SuppressionType.Suppressed)), (1, Gen.Constant(SuppressionType.Unsuppressed)))
            from emails in Gen.NonEmptyListOf(Gen.Elements(pool))
            from reason in Gen.Elements(SuppressionReasons.Unsubscribed, SuppressionReasons.HardBounce, SuppressionReasons.Operator)
            from campaign in Gen.Elements<string?>(null, "c1", "0a1b2c3d4e5f", "campaign-7", "0A1B", "abc")
            from detail in Gen.Elements<string?>(null, "550 5.1.1 no such user", "by phone")
            select (Func<int, SuppressionEvent>)(second => new SuppressionEvent(type, emails[0], T0.AddSeconds(second / 3), reason, campaign, detail,
                emails.Count > 1 ? [.. emails.Skip(1)] : null));
        var histories = (from makers in Gen.ListOf(entries)
                         from cut in Gen.Choose(0, makers.Count)
                         select (History: makers.Select((make, i) => make(i)).ToArray(), Cut: cut)).ToArbitrary();

        var property = Prop.ForAll(histories, generated =>
        {
            var whole = new SuppressionList();
            var before = new SuppressionList();
            var resumed = new SuppressionList();
            foreach (var e in generated.History)
            {
                whole.Apply(e);
            }

            foreach (var e in generated.History[..generated.Cut])
            {
                before.Apply(e);
            }

            SnapshotStore.Decode(SnapshotStore.Encode(0, before.WriteTo), resumed.ReadFrom);
            foreach (var e in generated.History[generated.Cut..])
            {
                resumed.Apply(e);
            }

            return Observe(resumed, pool) == Observe(whole, pool);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2_000).WithQuietOnSuccess(true), property);
    }

    [Fact]
    public void AFinishedCampaign_IsForgottenAfterTheSummaryRetention_WithItsKey_ButNeverOneStillGoing()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "old", T0, 1, "key-old", "h"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "old", T0.AddMinutes(1), 1, Delivered: [0]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "paused", T0, 2));
        ledger.Apply(new OutcomeEvent(OutcomeType.Paused, "paused", T0.AddMinutes(1)));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "cancelled", T0, 2));
        ledger.Apply(new OutcomeEvent(OutcomeType.Cancelled, "cancelled", T0.AddDays(5)));

        Assert.Equal(1, ledger.Forget(T0.AddDays(1)));

        Assert.Null(ledger.Find("old"));
        Assert.Null(ledger.FindKey("", "key-old"));
        Assert.Equal(CampaignLedger.Statuses.Paused, ledger.Find("paused")!.Status);
        Assert.Equal(CampaignLedger.Statuses.Cancelled, ledger.Find("cancelled")!.Status);
        Assert.Equal(2, ledger.Count);
    }

    [Fact]
    public void AFoldEmptiedAfterASnapshotFailedHalfWay_IsAsNew_AndTakesTheWholeStreamAgain()
    {
        var list = new SuppressionList();
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0, SuppressionReasons.Unsubscribed, "c1"));
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 2, "k1", "h", AcceptanceId: "a1"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Started, "c", T0, AcceptanceId: "a1"));
        var data = SnapshotStore.Encode(0, ledger.WriteTo);
        Assert.ThrowsAny<Exception>(() => SnapshotStore.Decode(data[..(data.Length / 2)], ledger.ReadFrom));

        list.Clear();
        ledger.Clear();

        Assert.Equal((0, null), (list.Count, list.Find("a@example.org")));
        Assert.Equal((0, null, null, AcceptanceState.Undecided), (ledger.Count, ledger.Find("c"), ledger.FindKey("", "k1"), ledger.Acceptance("a1")));
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0, SuppressionReasons.Operator));
        Assert.Equal(SuppressionReasons.Operator, list.Find("A@example.org")!.Reason);
    }

    private static string Situation(CampaignLedger ledger) =>
        ledger.Recent(10).Select(s => s.Status).FirstOrDefault(s => s is "paused" or "cancelled" or "held" or "completed")
        ?? ledger.Recent(10).Select(s => s.Status).FirstOrDefault() ?? "empty";

    private static void Count(Dictionary<string, int> counts, string state)
    {
        var key = state == "completed_with_failures" ? "completed" : state;
        counts[key] = counts.GetValueOrDefault(key) + 1;
    }

    /// <summary>Everything a caller can learn from a ledger about the generated campaigns.</summary>
    private static string Observe(CampaignLedger ledger) => string.Join("\n",
        ledger.Recent(100).Select(s => s.ToString())
            .Concat(Campaigns.SelectMany(id =>
                (ledger.Failures(id, 0, 1000) is { } failures ? failures.Page.Select(f => f.ToString()).Append($"failures {failures.Count}") : ["none"])
                .Concat(Enumerable.Range(-1, MaxTotal + 4).Select(i => $"{id}[{i}]={ledger.State(id, i)}"))))
            .Concat(new[] { "", "s1" }.SelectMany(scope => new[] { "k1", "k2" }.Select(k => ledger.FindKey(scope, k) is { } r
                ? $"{scope}/{k}={r.Accepted} [{string.Join(", ", r.Submissions)}]" : $"{scope}/{k}=none")))
            .Concat(new[] { "a1", "a2", "a3" }.Select(a => $"{a}={ledger.Acceptance(a)}"))
            .Append($"releases {ledger.Releases}, first entry {ledger.FirstEntryAt}"));

    private static string Observe(SuppressionList list, string[] pool) => string.Join("\n",
        list.Page(0, 100).Page.Select(s => s.ToString())
            .Concat(pool.Select(email => $"{email}={list.Find(email)}"))
            .Append($"count {list.Count}"));
}
