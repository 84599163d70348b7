using System.Diagnostics;
using System.Diagnostics.Metrics;
using Bulk.Broker.Telemetry;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Smtp;

/// <summary>The SMTP side of a Worker's metrics: how long sends take, the pool's connections, and waits for a rate limit.</summary>
/// <remarks>Tags are made once per Worker (its relay) or once per process (the rest): recording allocates nothing.</remarks>
public sealed class SmtpMetrics(IOptions<SmtpOptions> options)
{
    // Seconds, from a pipelined send on a warm connection (milliseconds) to a slow relay's timeout.
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60];

    private static readonly Histogram<double> SendDuration = BulkTelemetry.Meter.CreateHistogram(
        "bulk.smtp.send.duration", "s",
        "One SMTP attempt: taking a connection from the pool (opening one when none is idle) until the relay's last reply",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    private static readonly UpDownCounter<long> Connections = BulkTelemetry.Meter.CreateUpDownCounter<long>(
        "bulk.smtp.connections", "{connection}", "SMTP connections open to the relay, idle in the pool or used by a send");

    private static readonly Histogram<double> RateLimitWait = BulkTelemetry.Meter.CreateHistogram(
        "bulk.rate_limit.wait.duration", "s",
        "A send that had to wait for a rate limit, and how long; sends that did not wait are not counted",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    private static readonly KeyValuePair<string, object?> Idle = new("bulk.smtp.connection.state", "idle");
    private static readonly KeyValuePair<string, object?> Used = new("bulk.smtp.connection.state", "used");

    private static readonly KeyValuePair<string, object?>[] Results =
    [
        new("bulk.smtp.result", "delivered"), new("bulk.smtp.result", "rejected"), new("bulk.smtp.result", "deferred"),
        new("bulk.smtp.result", "refused"), new("bulk.smtp.result", "sender_refused"),
    ];

    /// <summary>The limits a send can wait for: the Worker's rate, a domain's rate, a domain's back-off after "too many", the global rate.</summary>
    public static readonly KeyValuePair<string, object?> OverallLimit = new("bulk.rate_limit", "overall");
    public static readonly KeyValuePair<string, object?> DomainLimit = new("bulk.rate_limit", "domain");
    public static readonly KeyValuePair<string, object?> BackoffLimit = new("bulk.rate_limit", "backoff");
    public static readonly KeyValuePair<string, object?> GlobalLimit = new("bulk.rate_limit", "global");

    private readonly KeyValuePair<string, object?> address = new("server.address", options.Value.Host);
    private readonly KeyValuePair<string, object?> port = new("server.port", options.Value.Port);

    /// <summary>An attempt that began at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp) ended with <paramref name="status"/>.</summary>
    public void Attempted(long started, SendStatus status) =>
        SendDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, address, port, Results[(int)status]);

    public void Opened() => Connections.Add(1, address, port, Used);

    public void Reused()
    {
        Connections.Add(-1, address, port, Idle);
        Connections.Add(1, address, port, Used);
    }

    public void Idled()
    {
        Connections.Add(-1, address, port, Used);
        Connections.Add(1, address, port, Idle);
    }

    public void Closed(bool idle) => Connections.Add(-1, address, port, idle ? Idle : Used);

    /// <summary>A send waited for <paramref name="limit"/> since <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static void Waited(KeyValuePair<string, object?> limit, long started) =>
        RateLimitWait.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, limit);
}
