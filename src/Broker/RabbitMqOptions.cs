using System.ComponentModel.DataAnnotations;
using Bulk.Contracts;

namespace Bulk.Broker;

/// <summary>Where the broker is (<c>RabbitMq__Uri</c>) and under which prefix Bulk's queues live (<c>RabbitMq__Prefix</c>).</summary>
public sealed class RabbitMqOptions : IValidatableObject
{
    public const string Section = "RabbitMq";

    public string? Uri { get; set; }

    public string Prefix { get; set; } = Topology.DefaultPrefix;

    /// <summary>How long the outcomes stream keeps its entries (RabbitMQ's x-max-age: 7D, 12h, 30m…).</summary>
    public string OutcomesMaxAge { get; set; } = "7D";

    /// <summary>The most the outcomes stream may hold on disk before old segments are dropped.</summary>
    public long OutcomesMaxBytes { get; set; } = 2_000_000_000;

    // Methods, not properties: the options validator reads every property, and these only make sense once valid.
    public Topology ToTopology() => new(Prefix);

    public Uri ToBrokerUri() => new(Uri!);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(Uri))
        {
            yield return new ValidationResult(
                "RabbitMq__Uri is required: the broker to use, e.g. amqp://guest:guest@127.0.0.1:5672/", [nameof(Uri)]);
        }
        else if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
        {
            yield return new ValidationResult(
                "RabbitMq__Uri must be an amqp:// or amqps:// URI, e.g. amqp://guest:guest@127.0.0.1:5672/", [nameof(Uri)]);
        }

        if (string.IsNullOrEmpty(OutcomesMaxAge) || !System.Text.RegularExpressions.Regex.IsMatch(OutcomesMaxAge, "^[0-9]+(Y|M|D|h|m|s)$"))
        {
            yield return new ValidationResult("RabbitMq__OutcomesMaxAge must be a number and a unit (Y, M, D, h, m, s), e.g. 7D", [nameof(OutcomesMaxAge)]);
        }

        if (OutcomesMaxBytes < 1_000_000)
        {
            yield return new ValidationResult("RabbitMq__OutcomesMaxBytes must be at least 1000000", [nameof(OutcomesMaxBytes)]);
        }

        if (string.IsNullOrWhiteSpace(Prefix) || Prefix.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            yield return new ValidationResult(
                "RabbitMq__Prefix must be letters, digits, '-', '_' or '.' (default: bulk)", [nameof(Prefix)]);
        }
    }
}
