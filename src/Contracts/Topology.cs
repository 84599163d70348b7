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
}
