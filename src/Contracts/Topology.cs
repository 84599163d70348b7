namespace Bulk.Contracts;

/// <summary>The names and arguments of the broker objects Bulk uses, under one configurable prefix.</summary>
/// <remarks>The prefix lets tests and parallel environments share one broker without seeing each other's work.</remarks>
/// <param name="Replicas">Nodes holding a copy of each quorum queue; a smaller cluster gives each node one.</param>
/// <param name="StreamReplicas">Nodes holding a copy of each stream: at least every node a process may connect to,
/// since a stream is read over AMQP 0-9-1 only on a node holding a copy of it.</param>
public sealed record Topology(string Prefix = Topology.DefaultPrefix, int Replicas = Topology.DefaultReplicas, int StreamReplicas = Topology.DefaultReplicas)
{
    public const string DefaultPrefix = "bulk";

    /// <summary>Every node of a three-node cluster; on one node, that node.</summary>
    public const int DefaultReplicas = 3;

    /// <summary>Durable quorum queue holding jobs to deliver.</summary>
    public string WorkQueue => $"{Prefix}.send";

    /// <summary>Durable quorum queue for jobs that cannot be processed at all (the parking lot).</summary>
    public string DeadQueue => $"{Prefix}.dead";

    /// <summary>Returns of a job to <see cref="WorkQueue"/> unacknowledged (a Worker died, a connection was lost, a job
    /// was handed back) after which the broker takes it off the queue: a job that crashes Workers stops being redelivered.</summary>
    public const int WorkDeliveryLimit = 20;

    /// <summary>How many deliveries before <see cref="WorkDeliveryLimit"/> a Worker parks a job itself rather than work on it.</summary>
    public const int WorkDeliveryMargin = 2;

    /// <summary>Arguments every declaration of <see cref="WorkQueue"/> must use, or the broker refuses it.</summary>
    /// <remarks>What the broker takes off at the delivery limit goes to <see cref="OverLimitQueue"/>, not straight to the
    /// parking lot: there its recipients get an outcome, so that the campaign ends and a replay brings them back.</remarks>
    public IDictionary<string, object?> WorkQueueArguments => DeadLettering(QuorumQueue(), OverLimitQueue, new()
    {
        ["x-delivery-limit"] = WorkDeliveryLimit,
    });

    /// <summary>Durable quorum queue of the jobs the broker took off <see cref="WorkQueue"/> at its delivery limit: Workers
    /// record their recipients as dead-lettered failures and park them in <see cref="DeadQueue"/>.</summary>
    public string OverLimitQueue => $"{Prefix}.over-limit";

    /// <summary>Should recording them crash Workers too, the broker parks them itself after as many deliveries.</summary>
    public IDictionary<string, object?> OverLimitQueueArguments => DeadLettering(QuorumQueue(), DeadQueue, new()
    {
        ["x-delivery-limit"] = WorkDeliveryLimit,
    });

    public IDictionary<string, object?> DeadQueueArguments => QuorumQueue();

    /// <summary>The append-only stream of everything that happened to every campaign.</summary>
    public string OutcomesStream => $"{Prefix}.outcomes";

    /// <summary>Stream arguments; retention is fixed when the stream is first declared (change it later with a policy).</summary>
    public IDictionary<string, object?> OutcomesStreamArguments(string maxAge, long maxBytes) => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
        ["x-initial-cluster-size"] = StreamReplicas,
        ["x-max-age"] = maxAge,
        ["x-max-length-bytes"] = maxBytes,
        ["x-stream-max-segment-size-bytes"] = (int)Math.Min(maxBytes / 4, 100_000_000),
    };

    /// <summary>The append-only stream of suppressed addresses (unsubscribes, hard bounces, operators' entries).</summary>
    public string SuppressionsStream => $"{Prefix}.suppressions";

    /// <summary>No age or size limit: a suppression must last as long as the list is used.</summary>
    public IDictionary<string, object?> SuppressionsStreamArguments => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
        ["x-initial-cluster-size"] = StreamReplicas,
    };

    /// <summary>The message templates of split campaigns, each written once and read by offset (jobs say where theirs is).</summary>
    public string TemplatesStream => $"{Prefix}.templates";

    /// <summary>Kept by age only: a size limit would drop the templates of the largest campaigns first, mid-delivery.</summary>
    public IDictionary<string, object?> TemplatesStreamArguments(string maxAge) => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
        ["x-initial-cluster-size"] = StreamReplicas,
        ["x-max-age"] = maxAge,
        // Retention drops whole segments: small ones let an aged template go without waiting for 500 MB of newer ones.
        ["x-stream-max-segment-size-bytes"] = 50_000_000,
    };

    /// <summary>Where the snapshots of a stream's fold are kept.</summary>
    public static string SnapshotStream(string stream) => $"{stream}.snapshots";

    /// <summary>Snapshots are kept by size: the oldest segments go first, the one being written (the latest snapshot) never.</summary>
    public IDictionary<string, object?> SnapshotStreamArguments(long maxBytes) => new Dictionary<string, object?>
    {
        ["x-queue-type"] = "stream",
        ["x-initial-cluster-size"] = StreamReplicas,
        ["x-max-length-bytes"] = maxBytes,
        ["x-stream-max-segment-size-bytes"] = (int)Math.Min(maxBytes / 4, 100_000_000),
    };

    /// <summary>A delay tier: jobs wait here for <paramref name="delay"/>, then dead-letter back onto the work queue.</summary>
    public string RetryQueue(TimeSpan delay) => $"{Prefix}.retry.{(long)delay.TotalMilliseconds}ms";

    public IDictionary<string, object?> RetryQueueArguments(TimeSpan delay) => DeadLettering(QuorumQueue(), WorkQueue, new()
    {
        ["x-message-ttl"] = (long)delay.TotalMilliseconds,
    });

    /// <summary>Where the jobs of paused and held campaigns wait (and jobs that met a broker failure, for a moment):
    /// Workers move them back to work themselves; no TTL, no dead-lettering.</summary>
    public string PausedQueue => $"{Prefix}.paused";

    public IDictionary<string, object?> PausedQueueArguments => QuorumQueue();

    /// <summary>The shared token bucket of a global rate limit: a replicated queue, so it outlives any one node.</summary>
    public string RateTokens(double rate) => $"{Prefix}.rate.{rate.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Holds at most <paramref name="capacity"/> tokens; the oldest are dropped, so an idle bucket allows no burst.</summary>
    public IDictionary<string, object?> RateTokensArguments(int capacity) => QuorumQueue(new()
    {
        ["x-max-length"] = capacity,
        ["x-overflow"] = "drop-head",
    });

    /// <summary>An exclusive queue used as a lock on an idempotency key across every Front.</summary>
    public string IdempotencyLock(string keyHash) => $"{Prefix}.lock.{keyHash}";

    private Dictionary<string, object?> QuorumQueue(Dictionary<string, object?>? more = null)
    {
        var arguments = new Dictionary<string, object?>
        {
            ["x-queue-type"] = "quorum",
            ["x-quorum-initial-group-size"] = Replicas,
        };
        foreach (var (key, value) in more ?? [])
        {
            arguments[key] = value;
        }

        return arguments;
    }

    /// <summary>Dead-letters to <paramref name="target"/> at least once: the default, at most once, drops a dead letter
    /// when the target has no leader at that moment (a node just died), and the job would vanish unsent and unrecorded.</summary>
    /// <remarks>RabbitMQ takes at-least-once only with <c>reject-publish</c> overflow (a queue with no length limit never overflows).</remarks>
    private static Dictionary<string, object?> DeadLettering(Dictionary<string, object?> arguments, string target, Dictionary<string, object?> more)
    {
        arguments["x-dead-letter-exchange"] = "";
        arguments["x-dead-letter-routing-key"] = target;
        arguments["x-dead-letter-strategy"] = "at-least-once";
        arguments["x-overflow"] = "reject-publish";
        foreach (var (key, value) in more)
        {
            arguments[key] = value;
        }

        return arguments;
    }
}
