using System.ComponentModel.DataAnnotations;

namespace Bulk.Worker.Delivery;

/// <summary>How a Worker takes work from the broker and retries it (<c>Delivery__*</c>).</summary>
public sealed class DeliveryOptions : IValidatableObject
{
    public const string Section = "Delivery";

    /// <summary>Jobs a Worker holds unacknowledged at once; it works on them concurrently.</summary>
    public ushort Prefetch { get; set; } = 4;

    /// <summary>A job with more recipients than this is split into jobs of this size before anything is sent.</summary>
    public int RecipientsPerJob { get; set; } = 100;

    /// <summary>Immediate retries of a transient SMTP failure (4xx, dropped connection, timeout) inside the Worker.</summary>
    public int ImmediateRetries { get; set; } = 3;

    /// <summary>First backoff of the immediate retries; each next one doubles, with jitter.</summary>
    public int RetryBaseDelayMilliseconds { get; set; } = 500;

    /// <summary>Times a recipient goes back on the queue after its immediate retries are spent, before it is failed.</summary>
    public int MaxRequeues { get; set; } = 5;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Prefetch is < 1 or > 1000)
        {
            yield return new ValidationResult("Delivery__Prefetch must be between 1 and 1000", [nameof(Prefetch)]);
        }

        if (RecipientsPerJob is < 1 or > 100_000)
        {
            yield return new ValidationResult("Delivery__RecipientsPerJob must be between 1 and 100000", [nameof(RecipientsPerJob)]);
        }

        if (ImmediateRetries is < 0 or > 20)
        {
            yield return new ValidationResult("Delivery__ImmediateRetries must be between 0 and 20", [nameof(ImmediateRetries)]);
        }

        if (RetryBaseDelayMilliseconds is < 1 or > 60_000)
        {
            yield return new ValidationResult("Delivery__RetryBaseDelayMilliseconds must be between 1 and 60000", [nameof(RetryBaseDelayMilliseconds)]);
        }

        if (MaxRequeues is < 0 or > 100)
        {
            yield return new ValidationResult("Delivery__MaxRequeues must be between 0 and 100", [nameof(MaxRequeues)]);
        }
    }
}
