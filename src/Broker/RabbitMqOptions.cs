using System.ComponentModel.DataAnnotations;
using Bulk.Contracts;

namespace Bulk.Broker;

/// <summary>Where the broker is (<c>RabbitMq__Uri</c>) and under which prefix Bulk's queues live (<c>RabbitMq__Prefix</c>).</summary>
public sealed class RabbitMqOptions : IValidatableObject
{
    public const string Section = "RabbitMq";

    private const string PrefixRule = "RabbitMq__Prefix must be letters, digits, '-', '_' or '.' (default: bulk)";
    private const string MaxAgeRule = "RabbitMq__OutcomesMaxAge must be a number and a unit (Y, M, D, h, m, s), e.g. 7D";

    [Required(ErrorMessage = "RabbitMq__Uri is required: the broker to use, e.g. amqp://guest:guest@127.0.0.1:5672/")]
    public string? Uri { get; set; }

    [Required(ErrorMessage = PrefixRule)]
    [RegularExpression("^[A-Za-z0-9._-]+$", ErrorMessage = PrefixRule)]
    public string Prefix { get; set; } = Topology.DefaultPrefix;

    /// <summary>How long the outcomes stream keeps its entries (RabbitMQ's x-max-age: 7D, 12h, 30m…).</summary>
    [Required(ErrorMessage = MaxAgeRule)]
    [RegularExpression("^[0-9]+(Y|M|D|h|m|s)$", ErrorMessage = MaxAgeRule)]
    public string OutcomesMaxAge { get; set; } = "7D";

    /// <summary>The most the outcomes stream may hold on disk before old segments are dropped.</summary>
    [Range(1_000_000d, long.MaxValue, ErrorMessage = "RabbitMq__OutcomesMaxBytes must be at least 1000000")]
    public long OutcomesMaxBytes { get; set; } = 2_000_000_000;

    // Methods, not properties: the options validator reads every property, and these only make sense once valid.
    public Topology ToTopology() => new(Prefix);

    public Uri ToBrokerUri() => new(Uri!);

    /// <summary>What the attributes cannot say: the URI must be one the client can use.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
        {
            yield return new ValidationResult(
                "RabbitMq__Uri must be an amqp:// or amqps:// URI, e.g. amqp://guest:guest@127.0.0.1:5672/", [nameof(Uri)]);
        }
    }
}
