using System.Diagnostics.Metrics;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Telemetry;

namespace Bulk.Front.Campaigns;

/// <summary>Campaigns by status, as this Front's ledger holds them (<c>bulk.campaigns</c>), while the Front runs.</summary>
/// <remarks>Finished campaigns count until the ledger forgets them (<c>History__SummaryDays</c>); every status the
/// ledger knows is reported, 0 included, so that an alert on <c>held</c> sees the series go back to 0.</remarks>
public sealed class CampaignMetrics(CampaignLedger ledger) : IHostedService
{
    private static readonly string[] AllStatuses =
    [
        CampaignLedger.Statuses.Queued, CampaignLedger.Statuses.Sending, CampaignLedger.Statuses.Paused, CampaignLedger.Statuses.Held,
        CampaignLedger.Statuses.Completed, CampaignLedger.Statuses.CompletedWithFailures, CampaignLedger.Statuses.Cancelled,
    ];

    private static readonly LiveSet<CampaignLedger> Ledgers = new();

    private static readonly ObservableGauge<int> Campaigns = BulkTelemetry.Meter.CreateObservableGauge(
        "bulk.campaigns", Observe, "{campaign}", "Campaigns by status in the Front's ledger");

    private IDisposable? registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Campaigns;
        registration = Ledgers.Add(ledger);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        registration?.Dispose();
        return Task.CompletedTask;
    }

    private static IEnumerable<Measurement<int>> Observe()
    {
        foreach (var live in Ledgers.Items)
        {
            var counts = live.CountByStatus();
            foreach (var status in AllStatuses)
            {
                yield return new Measurement<int>(counts.GetValueOrDefault(status), new KeyValuePair<string, object?>("bulk.campaign.status", status));
            }
        }
    }
}
