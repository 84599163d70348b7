using System.Diagnostics.Metrics;
using Bulk.Broker.Telemetry;
using Bulk.Front.Broker;

namespace Bulk.Front.DeadLetters;

/// <summary>How many jobs wait in the parking lot (<c>bulk.dead</c>), counted by the Front while it runs.</summary>
/// <remarks>
/// Counting asks the broker, which a collection must not wait for: each collection reports the last count and starts
/// a fresh one when that is older than <see cref="Freshness"/>. So the value is at most one scrape interval (or
/// <see cref="Freshness"/>) old, and nothing is reported while the broker cannot be asked.
/// </remarks>
public sealed partial class DeadLetterMetrics(DeadLetterReplay replay, BrokerConnection broker, ILogger<DeadLetterMetrics> logger) : IHostedService
{
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(10);

    private static readonly LiveSet<DeadLetterMetrics> Running = new();

    private static readonly ObservableGauge<long> DeadLetters = BulkTelemetry.Meter.CreateObservableGauge(
        "bulk.dead_letters", Observe, "{job}", "Jobs parked in the dead-letter queue: transient failures past the last retry tier, or jobs that broke off");

    private readonly string queue = broker.Topology.DeadQueue;
    private long count = -1;
    private long countedAt;
    private int counting;
    private volatile bool stopped;

    private IDisposable? registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = DeadLetters;
        registration = Running.Add(this);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        stopped = true;
        registration?.Dispose();
        return Task.CompletedTask;
    }

    private static IEnumerable<Measurement<long>> Observe()
    {
        foreach (var running in Running.Items)
        {
            running.RefreshIfStale();
            if (Interlocked.Read(ref running.count) is >= 0 and var parked)
            {
                yield return new Measurement<long>(parked, new KeyValuePair<string, object?>("messaging.destination.name", running.queue));
            }
        }
    }

    private void RefreshIfStale()
    {
        if (stopped
            || (Interlocked.Read(ref countedAt) is not 0 and var at && System.Diagnostics.Stopwatch.GetElapsedTime(at) < Freshness)
            || Interlocked.Exchange(ref counting, 1) == 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(Freshness);
                Interlocked.Exchange(ref count, await replay.CountAsync(timeout.Token));
                Interlocked.Exchange(ref countedAt, System.Diagnostics.Stopwatch.GetTimestamp());
            }
            catch (Exception e)
            {
                // Not reported rather than wrong: an alert on "absent" catches a Front that cannot reach the broker.
                Interlocked.Exchange(ref count, -1);
                LogNotCounted(e.Message);
            }
            finally
            {
                Interlocked.Exchange(ref counting, 0);
            }
        });
    }

    [LoggerMessage(LogLevel.Debug, "The dead-letter queue could not be counted for the metrics: {Reason}")]
    private partial void LogNotCounted(string reason);
}
