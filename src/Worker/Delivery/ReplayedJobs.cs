using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;

namespace Bulk.Worker.Delivery;

/// <summary>A job an operator replayed from the parking lot, checked again when a Worker takes it.</summary>
/// <remarks>
/// The Front moves only jobs of campaigns it knows and that are not cancelled, but the campaign may be cancelled or
/// forgotten (<c>History__SummaryDays</c>) between the move and now, or the job was moved by an earlier version. Then
/// nothing of it is recorded: a <c>replayed</c> or progress entry of a forgotten campaign would bring it back as a new
/// one, <c>sending</c> for ever; one of a cancelled campaign would change its numbers.
/// </remarks>
internal static partial class ReplayedJobs
{
    private static readonly TimeSpan ReadToNowTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Null when the job goes on to be sent; otherwise what it leaves behind instead: nothing when its
    /// campaign is cancelled, itself back in the parking lot when no ledger knows its campaign.</summary>
    /// <remarks>
    /// Before it drops or parks a job, it reads the outcomes stream to now (a campaign accepted a moment ago may not
    /// have reached this Worker yet); a broker failure on the way is the caller's broker trouble. A job that goes on
    /// costs no round trip: a cancel it has not seen yet changes no number (the ledger reopens nothing of a cancelled
    /// campaign), and its remainder is dropped as any job's is.
    /// </remarks>
    public static async Task<IReadOnlyList<(string Queue, byte[] Body, string? DeadReason)>?> LeftBehindAsync(
        OutcomeLog outcomes, Topology topology, DeliveryJob job, ILogger logger, CancellationToken stopping)
    {
        if (outcomes.Ledger.FateOfParked(job.CampaignId) == ParkedJobFate.Replay)
        {
            return null;
        }

        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
        {
            timeout.CancelAfter(ReadToNowTimeout);
            await outcomes.ReadToNowAsync(timeout.Token);
        }

        switch (outcomes.Ledger.FateOfParked(job.CampaignId))
        {
            case ParkedJobFate.Drop:
                LogCancelled(logger, job.CampaignId, job.Recipients.Count);
                return [];
            case ParkedJobFate.KeepParked:
                LogForgotten(logger, job.CampaignId, job.Recipients.Count);
                return [(topology.DeadQueue, JobMessages.Serialize(job with { Replayed = false }),
                    "replayed after its campaign was forgotten (History__SummaryDays): not sent, nothing recorded")];
            default:
                return null;
        }
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} is cancelled: a replayed job of {Count} recipients is dropped unsent, its recipients staying failed")]
    private static partial void LogCancelled(ILogger logger, string campaignId, int count);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} is known to no ledger any more: a replayed job of {Count} recipients goes back to the parking lot unsent")]
    private static partial void LogForgotten(ILogger logger, string campaignId, int count);
}
