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
[JsonSerializable(typeof(Bulk.Contracts.Outcomes.CampaignStatus))]
[JsonSerializable(typeof(CampaignList))]
[JsonSerializable(typeof(FailurePage))]
[JsonSerializable(typeof(Bulk.Front.Suppressions.SuppressionRequest))]
[JsonSerializable(typeof(Bulk.Front.Suppressions.SuppressionPage))]
[JsonSerializable(typeof(Bulk.Front.Suppressions.SuppressionsAdded))]
[JsonSerializable(typeof(Bulk.Contracts.Suppressions.Suppression))]
[JsonSerializable(typeof(Dictionary<string, string[]>))]
[JsonSerializable(typeof(Bulk.Front.DeadLetters.ReplayResult))]
[JsonSerializable(typeof(Bulk.Front.DeadLetters.DeadLetterSummary))]
public sealed partial class FrontJson : JsonSerializerContext;
