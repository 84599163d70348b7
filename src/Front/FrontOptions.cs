using System.ComponentModel.DataAnnotations;

namespace Bulk.Front;

/// <summary>Limits on what one POST may ask for (<c>Front__MaxRecipients</c>, <c>Front__MaxBodyBytes</c>).</summary>
public sealed class FrontOptions : IValidatableObject
{
    public const string Section = "Front";

    public int MaxRecipients { get; set; } = 100_000;

    public long MaxBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How long the Front waits for the broker's confirm before it answers 503.</summary>
    public int PublishTimeoutSeconds { get; set; } = 15;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MaxRecipients is < 1 or > 10_000_000)
        {
            yield return new ValidationResult("Front__MaxRecipients must be between 1 and 10000000", [nameof(MaxRecipients)]);
        }

        if (MaxBodyBytes is < 1024 or > 1024L * 1024 * 1024)
        {
            yield return new ValidationResult("Front__MaxBodyBytes must be between 1024 and 1073741824", [nameof(MaxBodyBytes)]);
        }

        if (PublishTimeoutSeconds is < 1 or > 300)
        {
            yield return new ValidationResult("Front__PublishTimeoutSeconds must be between 1 and 300", [nameof(PublishTimeoutSeconds)]);
        }
    }
}
