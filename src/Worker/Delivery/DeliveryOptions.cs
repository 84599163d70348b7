using System.ComponentModel.DataAnnotations;

namespace Bulk.Worker.Delivery;

/// <summary>How a Worker takes work from the broker and retries it (<c>Delivery__*</c>).</summary>
public sealed class DeliveryOptions : IValidatableObject
{
    public const string Section = "Delivery";

    /// <summary>Jobs a Worker holds unacknowledged at once; it works on them concurrently.</summary>
    [Range(1, 1000, ErrorMessage = "Delivery__Prefetch must be between 1 and 1000")]
    public ushort Prefetch { get; set; } = 4;

    /// <summary>A job with more recipients than this is split into jobs of this size before anything is sent.</summary>
    [Range(1, 100_000, ErrorMessage = "Delivery__RecipientsPerJob must be between 1 and 100000")]
    public int RecipientsPerJob { get; set; } = 100;

    /// <summary>Rendering time one job may spend before it starts no more recipients and hands the rest back to the queue,
    /// behind other campaigns' jobs: a campaign whose renderings are slow does not keep the Worker's prefetch to itself.</summary>
    [Range(100, 600_000, ErrorMessage = "Delivery__RenderSliceMilliseconds must be between 100 and 600000")]
    public int RenderSliceMilliseconds { get; set; } = 5000;

    /// <summary>Immediate retries of a transient SMTP failure (4xx, dropped connection, timeout) inside the Worker.</summary>
    [Range(0, 20, ErrorMessage = "Delivery__ImmediateRetries must be between 0 and 20")]
    public int ImmediateRetries { get; set; } = 3;

    /// <summary>First backoff of the immediate retries; each next one doubles, with jitter.</summary>
    [Range(1, 60_000, ErrorMessage = "Delivery__RetryBaseDelayMilliseconds must be between 1 and 60000")]
    public int RetryBaseDelayMilliseconds { get; set; } = 500;

    /// <summary>Mails a Worker may have handed to the relay before their outcomes are confirmed on the stream.</summary>
    /// <remarks>The bound on what a hard kill can lose, and so on the duplicates a restart can cause; larger is faster.</remarks>
    [Range(1, 100_000, ErrorMessage = "Delivery__MaxUnrecorded must be between 1 and 100000")]
    public int MaxUnrecorded { get; set; } = 256;

    /// <summary>Refusals of a sender by the relay in a row (DATA 5xx, or MAIL FROM/AUTH refusals) that open its circuit and hold its campaigns.</summary>
    /// <remarks>A single MAIL FROM or AUTH refusal holds the campaign that met it at once; this many open the sender's circuit for every campaign.</remarks>
    [Range(2, 1000, ErrorMessage = "Delivery__HoldAfterRefusals must be between 2 and 1000")]
    public int HoldAfterRefusals { get; set; } = 3;

    /// <summary>How long a sender's open circuit refuses to try the relay before one trial message.</summary>
    [Range(1, 86_400, ErrorMessage = "Delivery__HoldBreakSeconds must be between 1 and 86400")]
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

    /// <summary>What the attributes cannot say: the retry tiers must parse.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!TryParseTiers(RetryTiers ?? "", out var tiers) || tiers.Count > 20)
        {
            yield return new ValidationResult(
                "Delivery__RetryTiers must be up to 20 delays such as 30s,5m,30m,2h (an empty list dead-letters at once)", [nameof(RetryTiers)]);
        }
    }
}
