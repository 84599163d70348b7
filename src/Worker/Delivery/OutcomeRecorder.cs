using System.Threading.Channels;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Delivery;

/// <summary>Records recipients' outcomes on the outcomes stream, many per write (group commit).</summary>
/// <remarks>
/// A job is acked only after every outcome in it is confirmed by the broker. Under load one write carries hundreds of
/// outcomes; when idle, a single one goes at once. A sender takes a slot before it sends and the slot is freed when the
/// outcome is confirmed, so at most <see cref="DeliveryOptions.MaxUnrecorded"/> mails are ever out without a record:
/// that is all a hard kill can lose, and so the most duplicates a restart can cause.
/// </remarks>
public sealed partial class OutcomeRecorder(
    OutcomeLog log, IOptions<DeliveryOptions> options, DeliveryObserver observer, DeliveryMetrics metrics, ILogger<OutcomeRecorder> logger)
    : BackgroundService
{
    private const int MaxPerWrite = 2000;

    /// <summary>How long outcomes gather before a write: many outcomes per stream entry cost the broker and every tail far less.</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(25);

    /// <summary>A write the broker neither confirms nor refuses in this time is abandoned and tried again.</summary>
    private static readonly TimeSpan WriteTimeout = EventStream<OutcomeEvent>.WriteTimeout;

    private readonly Channel<Entry> pending = Channel.CreateUnbounded<Entry>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim unrecorded = new(options.Value.MaxUnrecorded, options.Value.MaxUnrecorded);

    /// <summary>Waits for room before a send; the slot is freed when that send's outcome is recorded (or not sent at all).</summary>
    public async Task<Slot> ReserveAsync(CancellationToken cancellationToken)
    {
        await unrecorded.WaitAsync(cancellationToken);
        DeliveryMetrics.SlotTaken();
        return new Slot(unrecorded);
    }

    public Task DeliveredAsync(DeliveryJob job, JobRecipient recipient, Slot slot) =>
        Enqueue(new Entry(job.CampaignId, job.Total, slot, Delivered: recipient.Index));

    public Task FailedAsync(DeliveryJob job, FailedRecipient failure, Slot? slot = null) =>
        Enqueue(new Entry(job.CampaignId, job.Total, slot, Failed: failure));

    /// <summary>The recipient is on the suppression list: counted as suppressed, never sent.</summary>
    public Task SuppressedAsync(DeliveryJob job, JobRecipient recipient) =>
        Enqueue(new Entry(job.CampaignId, job.Total, null, Suppressed: recipient.Index));

    public Task DeferredAsync(DeliveryJob job, DeferredRecipient deferred, Slot slot) =>
        Enqueue(new Entry(job.CampaignId, job.Total, slot, Deferred: deferred));

    private Task Enqueue(Entry entry)
    {
        observer.Step(DeliveryStep.Record);
        if (!pending.Writer.TryWrite(entry))
        {
            entry.Slot?.Dispose();
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
            if (batch.Count == 0 && !stoppingToken.IsCancellationRequested)
            {
                // Senders do not wait for this (they hold a slot each), so lingering costs latency, not throughput.
                await Task.Delay(Linger, CancellationToken.None);
            }

            while (batch.Count < MaxPerWrite && pending.Reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }

            try
            {
                using var timeout = new CancellationTokenSource(WriteTimeout);
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                await log.AppendAsync(ToEvents(batch), timeout.Token);
                LogWritten(batch.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                CountRecorded(batch);
                batch.ForEach(e => e.Done(null));
                batch.Clear();
                retry = TimeSpan.FromMilliseconds(200);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // Keep the batch: its senders wait (and their jobs stay unacked) until the broker is back.
                LogWriteFailed(batch.Count, e.Message, retry.TotalMilliseconds);
                if (stoppingToken.IsCancellationRequested)
                {
                    batch.ForEach(b => b.Done(e));
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
            OutcomeType.Progress,
            g.Key,
            now,
            Total: g.Max(e => e.Total),
            Delivered: Nullable([.. g.Where(e => e.Delivered is not null).Select(e => e.Delivered!.Value)]),
            Failed: Nullable([.. g.Where(e => e.Failed is not null).Select(e => e.Failed!)]),
            Deferred: Nullable([.. g.Where(e => e.Deferred is not null).Select(e => e.Deferred!)]),
            Suppressed: Nullable([.. g.Where(e => e.Suppressed is not null).Select(e => e.Suppressed!.Value)])))];
    }

    private void CountRecorded(List<Entry> batch)
    {
        int delivered = 0, failed = 0, deferred = 0, suppressed = 0;
        foreach (var e in batch)
        {
            delivered += e.Delivered is null ? 0 : 1;
            failed += e.Failed is null ? 0 : 1;
            deferred += e.Deferred is null ? 0 : 1;
            suppressed += e.Suppressed is null ? 0 : 1;
        }

        metrics.Recorded(delivered, failed, deferred, suppressed);
    }

    private static List<T>? Nullable<T>(List<T> items) => items.Count == 0 ? null : items;

    /// <summary>Room for one mail that has no confirmed outcome yet.</summary>
    public sealed class Slot(SemaphoreSlim owner) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                DeliveryMetrics.SlotFreed();
                owner.Release();
            }
        }
    }

    private sealed record Entry(string CampaignId, int Total, Slot? Slot, int? Delivered = null, FailedRecipient? Failed = null, DeferredRecipient? Deferred = null,
        int? Suppressed = null)
    {
        public TaskCompletionSource Recorded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Done(Exception? error)
        {
            Slot?.Dispose();
            if (error is null)
            {
                Recorded.TrySetResult();
            }
            else
            {
                Recorded.TrySetException(error);
            }
        }
    }

    [LoggerMessage(LogLevel.Debug, "Recorded {Count} outcomes in one write of {Milliseconds} ms")]
    private partial void LogWritten(int count, double milliseconds);

    [LoggerMessage(LogLevel.Warning, "Could not record {Count} outcomes ({Reason}); retrying in {DelayMs} ms")]
    private partial void LogWriteFailed(int count, string reason, double delayMs);
}
