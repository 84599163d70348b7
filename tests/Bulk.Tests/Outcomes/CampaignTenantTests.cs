using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>The ledger knows whose each campaign is, from its <c>accepted</c> entry, and shows a tenant only its own.</summary>
public sealed class CampaignTenantTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    /// <summary>A snapshot written by the code before tenants were recorded (format 2, commit de29ff4), of this history:
    /// "old" (2 recipients, subject "Before tenants" from news@example.com; 1 delivered), covering 777 bytes of stream.</summary>
    private const string FormatTwoSnapshot =
        "QlVMS1NOQVAxC1gAAICqqqrqn9T0YnYxsMNRDyc72tnADlc7nBTMxE66GJgqgNnRDke7nexytMPVTjczW15dAdMXhGGCAbYxRRh4io6zCWxVacDxS1J9RqxZAYXp8jW+paUOOrq5qBgDxzOr834udFgHTr9AjneHqh5kiZuYLMGGnFQTZE+9HNavTtopegAAAwM=";

    private static CampaignLedger TwoTenants()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "a1", T0, 2, Tenant: "tenant-a"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "a1", T0.AddSeconds(1), 2,
            Failed: [new FailedRecipient(1, "x@example.org", "550 5.1.1 no such user")]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "b1", T0.AddSeconds(2), 3, Tenant: "tenant-b"));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "keyless", T0.AddSeconds(3), 1));
        return ledger;
    }

    [Fact]
    public void ATenantFindsListsAndReadsTheFailuresOfItsOwnCampaignsOnly_AndEveryoneAll()
    {
        var ledger = TwoTenants();
        var a = TenantView.Of("tenant-a");

        Assert.Equal("a1", ledger.Find("a1", a)?.Id);
        Assert.Null(ledger.Find("b1", a));
        Assert.Null(ledger.Find("keyless", a));
        Assert.Equal(["a1"], ledger.Recent(10, a).Select(c => c.Id));
        Assert.Equal(["b1"], ledger.Recent(10, TenantView.Of("tenant-b")).Select(c => c.Id));
        Assert.Equal("x@example.org", ledger.Failures("a1", 0, 10, a)!.Value.Page.Single().Email);
        Assert.Null(ledger.Failures("a1", 0, 10, TenantView.Of("tenant-b")));
        Assert.Equal(["keyless", "b1", "a1"], ledger.Recent(10, TenantView.Everyone).Select(c => c.Id));
        Assert.Empty(ledger.Recent(10, TenantView.Of("")));
    }

    [Fact]
    public void ALimitCountsOnlyTheTenantsOwnCampaigns()
    {
        var ledger = TwoTenants();
        for (var i = 0; i < 5; i++)
        {
            ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, $"b{i + 2}", T0.AddMinutes(i + 1), 1, Tenant: "tenant-b"));
        }

        Assert.Equal(["a1"], ledger.Recent(1, TenantView.Of("tenant-a")).Select(c => c.Id));
    }

    [Fact]
    public void ACampaignKnownFromItsProgressFirst_IsNobodysButAnAdmins_UntilItsAcceptanceSaysWhose()
    {
        var ledger = new CampaignLedger();
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "c", T0, 2, Delivered: [0]));
        Assert.Null(ledger.Find("c", TenantView.Of("tenant-a")));

        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0.AddSeconds(1), 2, Tenant: "tenant-a"));
        // An acceptance written again (a retry that found its campaign live) cannot hand it to another tenant.
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "c", T0.AddSeconds(2), 2, Tenant: "tenant-b"));

        Assert.Equal(1, ledger.Find("c", TenantView.Of("tenant-a"))?.Delivered);
        Assert.Null(ledger.Find("c", TenantView.Of("tenant-b")));
    }

    [Fact]
    public void AForgottenCampaign_IsGoneFromItsTenantsListToo()
    {
        var ledger = TwoTenants();
        ledger.Apply(new OutcomeEvent(OutcomeType.Progress, "a1", T0.AddSeconds(5), 2, Delivered: [0]));
        ledger.Apply(new OutcomeEvent(OutcomeType.Accepted, "a2", T0.AddDays(2), 1, Tenant: "tenant-a"));

        Assert.Equal(1, ledger.Forget(T0.AddDays(1)));

        Assert.Equal(["a2"], ledger.Recent(10, TenantView.Of("tenant-a")).Select(c => c.Id));
        Assert.Null(ledger.Find("a1", TenantView.Everyone));
    }

    [Fact]
    public void ACampaignsTenant_SurvivesASnapshot()
    {
        var ledger = TwoTenants();

        var read = new CampaignLedger();
        SnapshotStore.Decode(SnapshotStore.Encode(0, ledger.WriteTo), read.ReadFrom);

        Assert.Equal(["a1"], read.Recent(10, TenantView.Of("tenant-a")).Select(c => c.Id));
        Assert.Equal(["b1"], read.Recent(10, TenantView.Of("tenant-b")).Select(c => c.Id));
        Assert.Equal(ledger.Recent(10), read.Recent(10));
    }

    [Fact]
    public void ASnapshotOfTheFormatBeforeTenants_StillLoadsWhole_AndItsCampaignsAreAnAdminsOnly()
    {
        var ledger = new CampaignLedger();
        var covered = SnapshotStore.Decode(Convert.FromBase64String(FormatTwoSnapshot), ledger.ReadFrom);

        Assert.Equal(777, covered);
        var old = ledger.Find("old", TenantView.Everyone)!;
        Assert.Equal(("Before tenants", "news@example.com", 2, 1), (old.Subject, old.From, old.Total, old.Delivered));
        Assert.Null(ledger.Find("old", TenantView.Of("tenant-a")));
        Assert.Empty(ledger.Recent(10, TenantView.Of("tenant-a")));
    }
}
