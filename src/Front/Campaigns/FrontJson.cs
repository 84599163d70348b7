using System.Text.Json.Serialization;

namespace Bulk.Front.Campaigns;

/// <summary>Source-generated JSON for the Front's HTTP bodies.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    MaxDepth = 32)]
[JsonSerializable(typeof(CampaignRequest))]
[JsonSerializable(typeof(CampaignAccepted))]
public sealed partial class FrontJson : JsonSerializerContext;
