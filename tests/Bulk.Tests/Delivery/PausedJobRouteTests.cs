using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Worker.Delivery;

namespace Bulk.Tests.Delivery;

/// <summary>Where the paused queue's mover sends a job: a decision of what the ledger knows, tested without a broker.</summary>
public sealed class PausedJobRouteTests
{
    [Theory]
    [InlineData(CampaignLedger.Statuses.Paused, PausedJobRoute.Wait)]
    [InlineData(CampaignLedger.Statuses.Held, PausedJobRoute.Wait)]
    [InlineData(CampaignLedger.Statuses.Queued, PausedJobRoute.Work)]
    [InlineData(CampaignLedger.Statuses.Sending, PausedJobRoute.Work)]
    public void AKnownCampaignsJob_WaitsOnlyWhileItIsPausedOrHeld(string status, PausedJobRoute expected) =>
        Assert.Equal(expected, PausedJobs.Decide(Campaign(status), AcceptanceState.Undecided));

    [Fact]
    public void ACancelledCampaignsJob_GoesToWork_WhereTheConsumerDropsIt() =>
        Assert.Equal(PausedJobRoute.Work, PausedJobs.Decide(Campaign(CampaignLedger.Statuses.Paused) with { CancelledAt = DateTimeOffset.UtcNow }, null));

    [Theory]
    [InlineData(AcceptanceState.Live, PausedJobRoute.Work)]
    [InlineData(AcceptanceState.Void, PausedJobRoute.Work)]
    [InlineData(AcceptanceState.Undecided, PausedJobRoute.WaitForEntry)]
    [InlineData(null, PausedJobRoute.WaitForEntry)]
    public void AnUnknownCampaignsJob_WaitsForItsFirstEntry_UnlessItsSubmissionIsSettled(AcceptanceState? acceptance, PausedJobRoute expected) =>
        Assert.Equal(expected, PausedJobs.Decide(null, acceptance));

    private static CampaignStatus Campaign(string status) =>
        new("c1", status, 10, 0, 0, 0, 10, DateTimeOffset.UtcNow, null, null, 0);
}
