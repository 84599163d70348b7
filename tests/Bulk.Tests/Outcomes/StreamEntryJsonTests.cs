using System.Text.Json;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;

namespace Bulk.Tests.Outcomes;

/// <summary>The streams' entries are read back by every process, old and new: their JSON never changes shape.</summary>
public sealed class StreamEntryJsonTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Each kind of outcome entry and the exact JSON it had when types were strings.</summary>
    public static TheoryData<string, OutcomeEvent, string> Outcomes => new()
    {
        {
            "accepted", new OutcomeEvent(OutcomeType.Accepted, "c1", T0, 3, "key-1", "hash-1", DuplicatesDropped: 2),
            """{"type":"accepted","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"idempotencyKey":"key-1","requestHash":"hash-1","duplicatesDropped":2}"""
        },
        {
            // Since the page shows campaigns by subject and sender: what an accepted entry written now carries.
            "accepted", new OutcomeEvent(OutcomeType.Accepted, "c2", T0, 1, Subject: "Hello {{ name }}", From: "News <news@example.com>"),
            """{"type":"accepted","campaignId":"c2","at":"2026-11-25T12:00:00+00:00","total":1,"duplicatesDropped":0,"subject":"Hello {{ name }}","from":"News \u003Cnews@example.com\u003E"}"""
        },
        {
            "progress", new OutcomeEvent(OutcomeType.Progress, "c1", T0, 3, Delivered: [0], Failed: [new FailedRecipient(1, "b@example.org", "550 5.1.1 no such user", DeadLettered: true)],
                Deferred: [new DeferredRecipient(2, 1, "451 4.3.0 try again later")], Suppressed: [4]),
            """{"type":"progress","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"delivered":[0],"failed":[{"index":1,"email":"b@example.org","reply":"550 5.1.1 no such user","deadLettered":true}],"deferred":[{"index":2,"attempt":1,"reason":"451 4.3.0 try again later"}],"duplicatesDropped":0,"suppressed":[4]}"""
        },
        {
            "replayed", new OutcomeEvent(OutcomeType.Replayed, "c1", T0, 3, Replayed: [1, 2]),
            """{"type":"replayed","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"replayed":[1,2],"duplicatesDropped":0}"""
        },
        { "paused", new OutcomeEvent(OutcomeType.Paused, "c1", T0, 3), """{"type":"paused","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"duplicatesDropped":0}""" },
        { "resumed", new OutcomeEvent(OutcomeType.Resumed, "c1", T0, 3), """{"type":"resumed","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"duplicatesDropped":0}""" },
        { "cancelled", new OutcomeEvent(OutcomeType.Cancelled, "c1", T0, 3), """{"type":"cancelled","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"duplicatesDropped":0}""" },
        {
            "held", new OutcomeEvent(OutcomeType.Held, "c1", T0, 3, Reason: "550 5.7.1 sender rejected"),
            """{"type":"held","campaignId":"c1","at":"2026-11-25T12:00:00+00:00","total":3,"duplicatesDropped":0,"reason":"550 5.7.1 sender rejected"}"""
        },
        { "marker", new OutcomeEvent(OutcomeType.Marker, "m1", T0), """{"type":"marker","campaignId":"m1","at":"2026-11-25T12:00:00+00:00","total":0,"duplicatesDropped":0}""" },
    };

    /// <summary>Each kind of suppression entry and the exact JSON it had when types were strings.</summary>
    public static TheoryData<string, SuppressionEvent, string> Suppressions => new()
    {
        {
            "suppressed", new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0, SuppressionReasons.HardBounce, "c1", "550 5.1.1 no such user", ["b@example.org"]),
            """{"type":"suppressed","email":"a@example.org","at":"2026-11-25T12:00:00+00:00","reason":"hard_bounce","campaignId":"c1","detail":"550 5.1.1 no such user","moreEmails":["b@example.org"]}"""
        },
        { "unsuppressed", new SuppressionEvent(SuppressionType.Unsuppressed, "a@example.org", T0), """{"type":"unsuppressed","email":"a@example.org","at":"2026-11-25T12:00:00+00:00"}""" },
        { "marker", new SuppressionEvent(SuppressionType.Marker, "m1", T0), """{"type":"marker","email":"m1","at":"2026-11-25T12:00:00+00:00"}""" },
    };

    [Theory]
    [MemberData(nameof(Outcomes))]
    public void AnOutcomeEntry_IsWrittenAsBefore_AndWhatWasWrittenBeforeReadsBack(string type, OutcomeEvent entry, string json)
    {
        Assert.Equal(json, JsonSerializer.Serialize(entry, BulkJson.Default.OutcomeEvent));

        var read = JsonSerializer.Deserialize(json, BulkJson.Default.OutcomeEvent)!;
        Assert.Equal(entry.Type, read.Type);
        Assert.Equal(json, JsonSerializer.Serialize(read, BulkJson.Default.OutcomeEvent));
        Assert.Contains($"\"type\":\"{type}\"", json, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Suppressions))]
    public void ASuppressionEntry_IsWrittenAsBefore_AndWhatWasWrittenBeforeReadsBack(string type, SuppressionEvent entry, string json)
    {
        Assert.Equal(json, JsonSerializer.Serialize(entry, BulkJson.Default.SuppressionEvent));

        var read = JsonSerializer.Deserialize(json, BulkJson.Default.SuppressionEvent)!;
        Assert.Equal(entry.Type, read.Type);
        Assert.Equal(json, JsonSerializer.Serialize(read, BulkJson.Default.SuppressionEvent));
        Assert.Contains($"\"type\":\"{type}\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void AMarkersId_TravelsInTheCampaignIdOrEmailField()
    {
        Assert.Equal("m1", JsonSerializer.Deserialize("""{"type":"marker","campaignId":"m1","at":"2026-11-25T12:00:00+00:00"}""", BulkJson.Default.OutcomeEvent)!.MarkerId);
        Assert.Equal("m1", JsonSerializer.Deserialize("""{"type":"marker","email":"m1","at":"2026-11-25T12:00:00+00:00"}""", BulkJson.Default.SuppressionEvent)!.MarkerId);
        Assert.Null(new OutcomeEvent(OutcomeType.Paused, "c1", T0).MarkerId);
        Assert.Null(new SuppressionEvent(SuppressionType.Suppressed, "a@example.org", T0).MarkerId);
    }
}
