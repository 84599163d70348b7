using System.Collections.Concurrent;
using System.Diagnostics;
using Bulk.Broker.Outcomes;

namespace Bulk.Worker.Delivery;

/// <summary>Logs, at Information, when this Worker starts on a campaign and when the campaign ends, with its trace id.</summary>
/// <remarks>
/// One campaign can be followed across the Front and every Worker by that trace id. The end is what the outcomes
/// stream says (completed, with failures or cancelled), seen by this Worker's fold; a campaign the ledger forgot or
/// this Worker never saw end (it stopped first) is not logged as ended.
/// </remarks>
public sealed partial class CampaignTrail(OutcomeLog outcomes, ILogger<CampaignTrail> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>How long a campaign this Worker's ledger does not know (yet, or any more) is looked for.</summary>
    private static readonly TimeSpan Unknown = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, (string? TraceId, DateTime Since)> campaigns = new(StringComparer.Ordinal);

    /// <summary>This Worker took a job of <paramref name="campaignId"/>: the first time, that is logged.</summary>
    public void Started(string campaignId, int total)
    {
        var traceId = Activity.Current?.TraceId.ToString();
        if (campaigns.TryAdd(campaignId, (traceId, DateTime.UtcNow)))
        {
            LogStarted(campaignId, total, traceId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                LogFinished();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: campaigns still under way are not logged as ended.
        }
    }

    private void LogFinished()
    {
        foreach (var (id, (traceId, since)) in campaigns)
        {
            switch (outcomes.Ledger.Find(id))
            {
                case null when DateTime.UtcNow - since > Unknown:
                    campaigns.TryRemove(id, out _);
                    break;
                case { IsFinished: true } status:
                    campaigns.TryRemove(id, out _);
                    using (logger.BeginScope("Campaign {CampaignId}", id))
                    {
                        LogEnded(id, status.Status, status.Delivered, status.Failed, status.Suppressed, status.Total, traceId);
                    }

                    break;
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} started on this Worker ({Total} recipients), trace {TraceId}")]
    private partial void LogStarted(string campaignId, int total, string? traceId);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} ended {Status}: {Delivered} delivered, {Failed} failed, {Suppressed} suppressed of {Total}, trace {TraceId}")]
    private partial void LogEnded(string campaignId, string status, int delivered, int failed, int suppressed, int total, string? traceId);
}
