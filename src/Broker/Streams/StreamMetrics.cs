using System.Diagnostics.Metrics;
using Bulk.Broker.Telemetry;

namespace Bulk.Broker.Streams;

/// <summary>How far behind the stream each running fold is (<c>bulk.ledger.lag</c>).</summary>
internal static class StreamMetrics
{
    /// <summary>A fold that can say how far behind its stream it is.</summary>
    public interface ILagging
    {
        string StreamName { get; }

        /// <summary>Seconds, or null before the first measurement.</summary>
        double? LagSeconds { get; }
    }

    public static readonly LiveSet<ILagging> Folds = new();

    private static readonly ObservableGauge<double> Lag = BulkTelemetry.Meter.CreateObservableGauge(
        "bulk.ledger.lag", ObserveLag, unit: "s",
        description: "Time for an entry written to the stream now to be applied to this process's fold of it; grows while the fold cannot catch up");

    /// <summary>Makes sure the instrument exists before the first collection.</summary>
    public static void Touch() => _ = Lag;

    private static IEnumerable<Measurement<double>> ObserveLag()
    {
        foreach (var fold in Folds.Items)
        {
            if (fold.LagSeconds is { } seconds)
            {
                yield return new Measurement<double>(seconds, new KeyValuePair<string, object?>("messaging.destination.name", fold.StreamName));
            }
        }
    }
}
