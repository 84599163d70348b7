namespace Bulk.Contracts;

/// <summary>The names and arguments of the broker objects Bulk uses, under one configurable prefix.</summary>
/// <remarks>The prefix lets tests and parallel environments share one broker without seeing each other's work.</remarks>
public sealed record Topology(string Prefix = Topology.DefaultPrefix)
{
    public const string DefaultPrefix = "bulk";

    /// <summary>Durable quorum queue holding jobs to deliver.</summary>
    public string WorkQueue => $"{Prefix}.send";

    /// <summary>Durable quorum queue for jobs that cannot be processed at all (the parking lot).</summary>
    public string DeadQueue => $"{Prefix}.dead";

    /// <summary>Arguments every declaration of <see cref="WorkQueue"/> must use, or the broker refuses it.</summary>
    public IDictionary<string, object?> WorkQueueArguments => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "quorum",
        // A job the Worker cannot even acknowledge (it crashes the process every time) stops being redelivered.
        ["x-delivery-limit"] = 20,
        ["x-dead-letter-exchange"] = "",
        ["x-dead-letter-routing-key"] = DeadQueue,
    };

    public IDictionary<string, object?> DeadQueueArguments => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "quorum",
    };

    /// <summary>The append-only stream of everything that happened to every campaign.</summary>
    public string OutcomesStream => $"{Prefix}.outcomes";

    /// <summary>Stream arguments; retention is fixed when the stream is first declared (change it later with a policy).</summary>
    public static IDictionary<string, object?> OutcomesStreamArguments(string maxAge, long maxBytes) => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
        ["x-max-age"] = maxAge,
        ["x-max-length-bytes"] = maxBytes,
        ["x-stream-max-segment-size-bytes"] = (int)Math.Min(maxBytes / 4, 100_000_000),
    };

    /// <summary>The append-only stream of suppressed addresses (unsubscribes, hard bounces, operators' entries).</summary>
    public string SuppressionsStream => $"{Prefix}.suppressions";

    /// <summary>No age or size limit: a suppression must last as long as the list is used.</summary>
    public static IDictionary<string, object?> SuppressionsStreamArguments => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
    };

    /// <summary>A delay tier: jobs wait here for <paramref name="delay"/>, then dead-letter back onto the work queue.</summary>
    public string RetryQueue(TimeSpan delay) => $"{Prefix}.retry.{(long)delay.TotalMilliseconds}ms";

    public IDictionary<string, object?> RetryQueueArguments(TimeSpan delay) => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "quorum",
        ["x-message-ttl"] = (long)delay.TotalMilliseconds,
        ["x-dead-letter-exchange"] = "",
        ["x-dead-letter-routing-key"] = WorkQueue,
    };

    /// <summary>An exclusive queue used as a lock on an idempotency key across every Front.</summary>
    public string IdempotencyLock(string keyHash) => $"{Prefix}.lock.{keyHash}";
}
