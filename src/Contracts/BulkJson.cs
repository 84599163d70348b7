using System.Text.Json.Serialization;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;

namespace Bulk.Contracts;

/// <summary>Source-generated JSON for everything Bulk puts on the broker.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DeliveryJob))]
[JsonSerializable(typeof(MessageTemplate))]
[JsonSerializable(typeof(OutcomeEvent))]
[JsonSerializable(typeof(SuppressionEvent))]
public sealed partial class BulkJson : JsonSerializerContext;
