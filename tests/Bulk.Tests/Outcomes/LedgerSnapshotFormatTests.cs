using System.Text;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>The ledger's snapshot carries each campaign's subject and sender, and snapshots of the format before still load.</summary>
public sealed class LedgerSnapshotFormatTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.FromHours(1));

    /// <summary>A snapshot written by the code before subjects were recorded (format 1, commit aec3cd6), of this history:
    /// "done" (3 recipients, key k1 of scope s1, submission a1 started; 2 delivered, 1 failed) and "going" (40 recipients;
    /// 3 delivered, 1 suppressed, 1 deferred; held), covering 4242 bytes of stream.</summary>
    private const string FormatOneSnapshot =
        "QlVMS1NOQVAxi8AAAICqqqrqn0XNDNwvDuA3B7/pycEAHEDB9WDgB3dYTw5+uZmbCpj5pupg6gZgRz+c/XD3u5/Ofrg4ODiAX65qtevaSr2Z2LaZ/8Pw8PAwDB8eAMLcnBwn" +
        "hRK67NEHtaeE9r/87T7dOQSA2DjLEVBISu789QXhOVg/wQ85iGmk584wnhe9/Yrb/HI9s3J1OcqyicyUVlrOm+3dQlonfVNUsvFcI4QQktIdbJkCWFBIzHS6z14bVXtvNyiv" +
        "pG1W3152gIZjcTJVWnq2hmtZ85GLG5voogkkAHRAiBTAWEIxVlbhtThp+qu0kKh0BIKTyLVHLDau2d1Frik2zrIBAw==";

    [Fact]
    public void ALedgerWrittenAndReadBack_KeepsEachCampaignsSubjectAndSender()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c1", T0, 3, Subject: "Hello {{ name }} 🎉", From: "News <news@example.com>"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c1", T0.AddSeconds(1), 3, Delivered: [0, 1, 2]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c2", T0, 5, Subject: "<img src=x onerror=alert(1)>", From: "a@example.org"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "old", T0, 2)); // written before subjects were recorded

        var read = new CampaignLedger();
        SnapshotStore.Decode(SnapshotStore.Encode(0, ledger.WriteTo), read.ReadFrom);

        Assert.Equal(("Hello {{ name }} 🎉", "News <news@example.com>", CampaignLedger.Statuses.Completed),
            (read.Find("c1")!.Subject, read.Find("c1")!.From, read.Find("c1")!.Status));
        Assert.Equal(("<img src=x onerror=alert(1)>", "a@example.org"), (read.Find("c2")!.Subject, read.Find("c2")!.From));
        Assert.Equal((null, null, 2), (read.Find("old")!.Subject, read.Find("old")!.From, read.Find("old")!.Total));
        Assert.Equal(ledger.Recent(10), read.Recent(10));
    }

    [Fact]
    public void AnAcceptedEntryWithoutSubject_StillFolds_AndAnAcceptanceWrittenAgainKeepsTheFirstSubject()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "old", T0, 2));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "old", T0.AddSeconds(1), 2, Delivered: [0]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "new", T0, 1, Subject: "First", From: "a@example.org"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "new", T0.AddSeconds(2), 1, Subject: "Second", From: "b@example.org"));

        var old = ledger.Find("old")!;
        Assert.Equal((CampaignLedger.Statuses.Sending, 1, null, null), (old.Status, old.Delivered, old.Subject, old.From));
        Assert.Equal(("First", "a@example.org"), (ledger.Find("new")!.Subject, ledger.Find("new")!.From));
    }

    [Fact]
    public void ASnapshotOfTheFormatBeforeSubjects_StillLoadsWhole_WithNoSubjects()
    {
        var ledger = new CampaignLedger();
        var covered = SnapshotStore.Decode(Convert.FromBase64String(FormatOneSnapshot), ledger.ReadFrom);

        Assert.Equal(4242, covered);
        Assert.Equal(["going", "done"], ledger.Recent(10).Select(c => c.Id));
        var going = ledger.Find("going")!;
        Assert.Equal((CampaignLedger.Statuses.Held, 40, 3, 1, 1, "550 5.7.1 sender rejected"),
            (going.Status, going.Total, going.Delivered, going.Suppressed, going.Deferred, going.HeldReason));
        Assert.Equal(RecipientState.Done, ledger.State("going", 5));
        Assert.Equal(RecipientState.Held, ledger.State("going", 6));
        var done = ledger.Find("done")!;
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 2, 1), (done.Status, done.Delivered, done.Failed));
        Assert.Equal("b@example.org", ledger.Failures("done", 0, 10)!.Value.Page.Single().Email);
        Assert.Equal("done", ledger.FindKey("s1", "k1")!.Accepted!.CampaignId);
        Assert.Equal(AcceptanceState.Live, ledger.Acceptance("a1"));
        Assert.Equal(T0, ledger.FirstEntryAt);
        Assert.All(ledger.Recent(10), c => Assert.Equal((null, null), (c.Subject, c.From)));

        // Written again, it is of the current format, and carries what comes next.
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "next", T0.AddMinutes(1), 1, Subject: "Next", From: "a@example.org"));
        var again = new CampaignLedger();
        SnapshotStore.Decode(SnapshotStore.Encode(0, ledger.WriteTo), again.ReadFrom);
        Assert.Equal(ledger.Recent(10), again.Recent(10));
        Assert.Equal("Next", again.Find("next")!.Subject);
    }

    [Fact]
    public void ASnapshotOfThisFormat_MakesCodeOfTheFirstFormatThrowAtOnce_SoItReplaysTheStreamInsteadOfMisreading()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 2, Subject: "Hello", From: "a@example.org"));

        // How the first format's ReadFrom began: the release count, then the time of the first entry.
        SnapshotStore.Decode(SnapshotStore.Encode(0, ledger.WriteTo), reader =>
        {
            reader.ReadInt64();
            Assert.Throws<ArgumentOutOfRangeException>(() => Snapshots.ReadNullableTime(reader));
        });
    }

    [Fact]
    public void ASnapshotOfALaterFormat_IsRefused_AndTheLedgerLeftEmptyForAReplay()
    {
        var later = SnapshotStore.Encode(0, writer =>
        {
            writer.Write(-1L);
            writer.Write(true);
            writer.Write(-(long)(CampaignLedger.SnapshotFormat + 1));
            writer.Write(Encoding.UTF8.GetBytes("whatever a later format holds"));
        });
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0, 2));

        var refused = Assert.Throws<InvalidDataException>(() => SnapshotStore.Decode(later, ledger.ReadFrom));
        Assert.Contains($"format {CampaignLedger.SnapshotFormat + 1}", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, ledger.Count);
    }
}
