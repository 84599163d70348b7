using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Bulk.Front.Campaigns;

/// <summary>What <c>POST /campaigns</c>'s metadata cannot say by itself: its header, an example body, what each refusal means.</summary>
internal static class CampaignDescriptions
{
    public const string Post =
        "Validates the campaign (templates included, rendered for the first recipient), enqueues it whole on the broker, " +
        "then answers 202 with `Location: /campaigns/{id}` and closes the connection. Nothing is enqueued for a refused campaign. " +
        "Refusals: 400 names each field at fault in `errors`; 403 a sender not in `Front__AllowedSenders` (also with `errors`); " +
        "408 a body that did not arrive whole within `Front__BodyDeadlineSeconds`, the connection then closed; " +
        "413 a body over `Front__MaxBodyBytes` or a campaign larger than the broker takes; 415 a body that is not `application/json`; " +
        "422 an `Idempotency-Key` used before with another body; 429 more campaigns a minute than `Front__CampaignsPerMinute`, or " +
        "more under way at once than `Front__MaxPostsInFlightPerKey`, with `Retry-After`; 503 the broker unavailable, with " +
        "`Retry-After` (when even this Front cannot tell whether it was enqueued, the problem says so and carries `campaignId`), " +
        "or the campaigns under way holding all of `Front__MaxIntakeMemoryBytes`, with `Retry-After`, mostly before the body is " +
        "read (send `Expect: 100-continue` not to upload it for nothing).";

    public static async Task DescribePostAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        // The handler reads the body itself, as it streams in, so nothing in its signature names it. Not Accepts<T>():
        // that would make routing answer a wrong Content-Type with a 415 of its own, before the handler's (which closes
        // the connection and names the type it got).
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                ["application/json"] = new()
                {
                    Schema = await context.GetOrCreateSchemaAsync(typeof(CampaignRequest), null, cancellationToken),
                    Example = Example(),
                },
            },
        };

        operation.Parameters ??= [];
        operation.Parameters.Add(new OpenApiParameter
        {
            Name = CampaignReader.IdempotencyKeyHeader,
            In = ParameterLocation.Header,
            Required = false,
            Description = "Makes a retry safe: the same key with the same body answers the campaign the first try made and enqueues " +
                "nothing new; the same key with another body is a 422. 1 to 200 printable ASCII characters, per API key.",
            Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = 200 },
        });

        if (operation.Responses?.TryGetValue("202", out var accepted) == true && accepted is OpenApiResponse response)
        {
            response.Headers ??= new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal);
            response.Headers["Location"] = new OpenApiHeader
            {
                Description = "`/campaigns/{id}`: where its status is.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }

        foreach (var status in new[] { "429", "503" })
        {
            if (operation.Responses?.TryGetValue(status, out var later) == true && later is OpenApiResponse refused)
            {
                refused.Headers ??= new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal);
                refused.Headers["Retry-After"] = new OpenApiHeader
                {
                    Description = "Seconds to wait before trying again.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer },
                };
            }
        }
    }

    /// <summary>A campaign with personalised recipients, and one recipient given as a bare address.</summary>
    private static JsonObject Example() => new()
    {
        ["from"] = "News <news@example.com>",
        ["subject"] = "Hello {{ name | default: \"friend\" }}",
        ["text"] = "Hi {{ name | default: \"friend\" }}, your code is {{ code | default: \"none\" }}.",
        ["html"] = "<p>Hi {{ name | default: \"friend\" }}, your code is <b>{{ code | default: \"none\" }}</b>.</p>",
        ["recipients"] = new JsonArray(
            "ann@example.com",
            new JsonObject { ["email"] = "bea@example.com", ["data"] = new JsonObject { ["name"] = "Bea", ["code"] = "B-42" } }),
        ["headers"] = new JsonObject { ["X-Campaign"] = "spring" },
    };
}
