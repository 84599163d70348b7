using System.Text;
using System.Text.Json;
using Bulk.Broker.Suppressions;
using Bulk.Contracts;
using Bulk.Contracts.Suppressions;

namespace Bulk.Tests.Delivery;

/// <summary>The fold of the suppressions stream, entry by entry.</summary>
public sealed class SuppressionListTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void AnEntryWithSeveralAddresses_SuppressesEachWithTheSameReasonAndNote()
    {
        var list = new SuppressionList();

        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0, SuppressionReasons.Operator,
            Detail: "asked by phone", MoreEmails: ["b@example.org", "C@example.org"]));

        Assert.Equal(3, list.Page(0, 10).Count);
        Assert.All(["a@example.org", "b@example.org", "c@example.org"], email =>
            Assert.Equal((SuppressionReasons.Operator, "asked by phone", T0), (list.Find(email)!.Reason, list.Find(email)!.Detail, list.Find(email)!.At)));
    }

    [Fact]
    public void AnEntryWithSeveralAddresses_KeepsTheFirstReasonOfThoseAlreadyOnTheList_AndRemovalTakesEachOff()
    {
        var list = new SuppressionList();
        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "b@example.org", T0, SuppressionReasons.Unsubscribed, "c1"));

        list.Apply(new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0.AddMinutes(1), SuppressionReasons.Operator, MoreEmails: ["b@example.org"]));
        Assert.Equal((2, SuppressionReasons.Unsubscribed), (list.Page(0, 10).Count, list.Find("b@example.org")!.Reason));

        list.Apply(new SuppressionEvent(SuppressionType.Unsuppressed, "a@example.org", T0.AddMinutes(2), MoreEmails: ["B@example.org"]));
        Assert.Equal(0, list.Page(0, 10).Count);
    }

    [Fact]
    public void AnEntryAsWrittenBeforeEntriesHeldSeveralAddresses_StillReads_AndAnEntryOfSeveralRoundTrips()
    {
        var old = """{"type":"suppressed","email":"a@example.org","at":"2026-11-25T12:00:00+00:00","reason":"operator","detail":"note"}""";
        var many = new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0, SuppressionReasons.Operator, MoreEmails: ["b@example.org"]);

        var read = JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(old), BulkJson.Default.SuppressionEvent)!;
        var again = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(many, BulkJson.Default.SuppressionEvent), BulkJson.Default.SuppressionEvent)!;

        Assert.Equal(("a@example.org", null), (read.Email, read.MoreEmails));
        Assert.Equal(["b@example.org"], again.MoreEmails!);
        Assert.DoesNotContain("moreEmails", Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(read, BulkJson.Default.SuppressionEvent)));
    }
}
