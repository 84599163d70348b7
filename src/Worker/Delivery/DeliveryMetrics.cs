using System.Diagnostics.Metrics;
using Bulk.Broker.Telemetry;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Delivery;

/// <summary>The delivery side of a Worker's metrics: mails by outcome and relay, jobs in flight, outcomes not yet confirmed.</summary>
/// <remarks>Mails are counted once per stream write, not per mail; tags are made once: recording allocates nothing.</remarks>
public sealed class DeliveryMetrics(IOptions<SmtpOptions> smtp)
{
    private static readonly Counter<long> Mails = BulkTelemetry.Meter.CreateCounter<long>(
        "bulk.mails", "{mail}",
        "Mails by outcome: delivered, failed (dead-lettered included), deferred (to a retry tier) and suppressed once the broker confirmed " +
        "the outcome; held when the relay refused the sender and the mail waits for the campaign to be resumed");

    private static readonly UpDownCounter<long> JobsInFlight = BulkTelemetry.Meter.CreateUpDownCounter<long>(
        "bulk.jobs.in_flight", "{job}", "Jobs taken from the work queue and not yet acknowledged");

    private static readonly UpDownCounter<long> Unconfirmed = BulkTelemetry.Meter.CreateUpDownCounter<long>(
        "bulk.mails.unconfirmed", "{mail}",
        "Mails being sent or sent whose outcome the broker has not confirmed yet (at most Delivery__MaxUnrecorded): what a hard kill could send twice");

    private static readonly Counter<long> HandedBackMails = BulkTelemetry.Meter.CreateCounter<long>(
        "bulk.rate_limit.handed_back", "{mail}",
        "Mails a job handed back unsent because their domain's rate limit or back-off would have kept the job waiting: " +
        "they go back to the campaign's queue with the job's remainder, no attempt spent");

    private static readonly KeyValuePair<string, object?> Delivered = new("bulk.outcome", "delivered");
    private static readonly KeyValuePair<string, object?> Failed = new("bulk.outcome", "failed");
    private static readonly KeyValuePair<string, object?> Deferred = new("bulk.outcome", "deferred");
    private static readonly KeyValuePair<string, object?> Suppressed = new("bulk.outcome", "suppressed");
    private static readonly KeyValuePair<string, object?> HeldOutcome = new("bulk.outcome", "held");

    private readonly KeyValuePair<string, object?> address = new("server.address", smtp.Value.Host);
    private readonly KeyValuePair<string, object?> port = new("server.port", smtp.Value.Port);

    /// <summary>Outcomes the broker just confirmed.</summary>
    public void Recorded(int delivered, int failed, int deferred, int suppressed)
    {
        Add(delivered, Delivered);
        Add(failed, Failed);
        Add(deferred, Deferred);
        Add(suppressed, Suppressed);
    }

    /// <summary>The relay refused the sender for a mail: it stays pending, and its campaign is held.</summary>
    public void Held() => Mails.Add(1, address, port, HeldOutcome);

    /// <summary>A job handed <paramref name="count"/> mails back to wait for their domain's turn.</summary>
    public void HandedBack(int count) => HandedBackMails.Add(count, address, port);

    public static void JobStarted() => JobsInFlight.Add(1);

    public static void JobEnded() => JobsInFlight.Add(-1);

    public static void SlotTaken() => Unconfirmed.Add(1);

    public static void SlotFreed() => Unconfirmed.Add(-1);

    private void Add(int count, KeyValuePair<string, object?> outcome)
    {
        if (count > 0)
        {
            Mails.Add(count, address, port, outcome);
        }
    }
}
