using System.Threading.Channels;
using Bulk.Contracts;

namespace Bulk.Worker.Delivery;

/// <summary>Records recipients' outcomes on the outcomes stream, many per write (group commit).</summary>
/// <remarks>
/// A sender awaits its recipient's record before counting it done, so a job is acked only after every outcome in it
/// is confirmed by the broker. Under load one write carries hundreds of outcomes; when idle, a single one goes at once.
/// Whatever a hard kill loses is at most what was delivered and not yet confirmed: the duplicates a restart can cause.
/// </remarks>
public sealed partial class OutcomeRecorder(OutcomeLog log, ILogger<OutcomeRecorder> logger) : BackgroundService
{
    private const int MaxPerWrite = 2000;

    /// <summary>A write the broker neither confirms nor refuses in this time is abandoned and tried again.</summary>
    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(10);

    private readonly Channel<Entry> pending = Channel.CreateUnbounded<Entry>(new UnboundedChannelOptions { SingleReader = true });

    public Task DeliveredAsync(DeliveryJob job, JobRecipient recipient) =>
        Enqueue(new Entry(job.CampaignId, job.Total, Delivered: recipient.Index));

    public Task FailedAsync(DeliveryJob job, FailedRecipient failure) =>
        Enqueue(new Entry(job.CampaignId, job.Total, Failed: failure));

    public Task DeferredAsync(DeliveryJob job, DeferredRecipient deferred) =>
        Enqueue(new Entry(job.CampaignId, job.Total, Deferred: deferred));

    private Task Enqueue(Entry entry)
    {
        if (!pending.Writer.TryWrite(entry))
        {
            throw new InvalidOperationException("the outcome recorder has stopped");
        }

        return entry.Recorded.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<Entry>(MaxPerWrite);
        var retry = TimeSpan.FromMilliseconds(200);
        // Stopping lets whatever is queued still be written: the consumer stops before this does and waits on these.
        // A batch that failed is retried as it is (plus whatever arrived since), without waiting for new entries.
        while (batch.Count > 0 || await pending.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < MaxPerWrite && pending.Reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }

            try
            {
                using var timeout = new CancellationTokenSource(WriteTimeout);
                await log.AppendAsync(ToEvents(batch), timeout.Token);
                batch.ForEach(e => e.Recorded.TrySetResult());
                batch.Clear();
                retry = TimeSpan.FromMilliseconds(200);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // Keep the batch: its senders wait (and their jobs stay unacked) until the broker is back.
                LogWriteFailed(batch.Count, e.Message, retry.TotalMilliseconds);
                if (stoppingToken.IsCancellationRequested)
                {
                    batch.ForEach(b => b.Recorded.TrySetException(e));
                    batch.Clear();
                }

                await Task.Delay(retry, CancellationToken.None);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        pending.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    private static List<OutcomeEvent> ToEvents(List<Entry> batch)
    {
        var now = DateTimeOffset.UtcNow;
        return [.. batch.GroupBy(e => e.CampaignId).Select(g => new OutcomeEvent(
            OutcomeTypes.Progress,
            g.Key,
            now,
            Total: g.Max(e => e.Total),
            Delivered: Nullable([.. g.Where(e => e.Delivered is not null).Select(e => e.Delivered!.Value)]),
            Failed: Nullable([.. g.Where(e => e.Failed is not null).Select(e => e.Failed!)]),
            Deferred: Nullable([.. g.Where(e => e.Deferred is not null).Select(e => e.Deferred!)])))];
    }

    private static List<T>? Nullable<T>(List<T> items) => items.Count == 0 ? null : items;

    private sealed record Entry(string CampaignId, int Total, int? Delivered = null, FailedRecipient? Failed = null, DeferredRecipient? Deferred = null)
    {
        public TaskCompletionSource Recorded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(LogLevel.Warning, "Could not record {Count} outcomes ({Reason}); retrying in {DelayMs} ms")]
    private partial void LogWriteFailed(int count, string reason, double delayMs);
}
