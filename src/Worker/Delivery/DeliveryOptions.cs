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

    /// <summary>Mails a Worker may have handed to the relay before their outcomes are confirmed on the stream.</summary>
    /// <remarks>The bound on what a hard kill can lose, and so on the duplicates a restart can cause; larger is faster.</remarks>
    public int MaxUnrecorded { get; set; } = 256;

    /// <summary>Refusals of a sender by the relay in a row (DATA 5xx, or MAIL FROM/AUTH refusals) that open its circuit and hold its campaigns.</summary>
    /// <remarks>A single MAIL FROM or AUTH refusal holds the campaign that met it at once; this many open the sender's circuit for every campaign.</remarks>
    public int HoldAfterRefusals { get; set; } = 3;

    /// <summary>How long a sender's open circuit refuses to try the relay before one trial message.</summary>
    public int HoldBreakSeconds { get; set; } = 30;

    /// <summary>Delay tiers a recipient waits through after its immediate retries are spent, e.g. "30s,5m,30m,2h".</summary>
    /// <remarks>After the last tier the recipient is dead-lettered and counted as failed.</remarks>
    public string RetryTiers { get; set; } = "30s,5m,30m,2h";

    /// <summary><see cref="RetryTiers"/> parsed; empty when it does not parse (validation says so).</summary>
    public IReadOnlyList<TimeSpan> ToRetryTiers() => TryParseTiers(RetryTiers, out var tiers) ? tiers : [];

    private static bool TryParseTiers(string text, out List<TimeSpan> tiers)
    {
        tiers = [];
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var unit = part[^1];
            if (!double.TryParse(part[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
            {
                return false;
            }

            TimeSpan? tier = unit switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                _ => null,
            };
            if (tier is null)
            {
                return false;
            }

            tiers.Add(tier.Value);
        }

        return true;
    }

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

        if (MaxUnrecorded is < 1 or > 100_000)
        {
            yield return new ValidationResult("Delivery__MaxUnrecorded must be between 1 and 100000", [nameof(MaxUnrecorded)]);
        }

        if (HoldAfterRefusals is < 2 or > 1000)
        {
            yield return new ValidationResult("Delivery__HoldAfterRefusals must be between 2 and 1000", [nameof(HoldAfterRefusals)]);
        }

        if (HoldBreakSeconds is < 1 or > 86_400)
        {
            yield return new ValidationResult("Delivery__HoldBreakSeconds must be between 1 and 86400", [nameof(HoldBreakSeconds)]);
        }

        if (!TryParseTiers(RetryTiers ?? "", out var tiers) || tiers.Count > 20)
        {
            yield return new ValidationResult(
                "Delivery__RetryTiers must be up to 20 delays such as 30s,5m,30m,2h (an empty list dead-letters at once)", [nameof(RetryTiers)]);
        }
    }
}
