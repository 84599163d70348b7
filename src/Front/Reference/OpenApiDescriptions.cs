using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Campaigns;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Bulk.Front.Reference;

/// <summary>What the OpenAPI generator cannot see in the endpoints' metadata: the API key scheme, the probes, the recipient shape.</summary>
internal static class OpenApiDescriptions
{
    public const string BearerScheme = "Bearer";

    /// <summary>Every status the ledger gives a campaign.</summary>
    private static readonly string[] StatusNames =
    [
        .. typeof(CampaignLedger.Statuses).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!),
    ];

    private const string AccessNote =
        "Every call but the probes, the page, the unsubscribe links and this description needs an API key, sent as " +
        "`Authorization: Bearer <key>`; a missing or wrong key is answered 401. The keys are `Front__ApiKeys` and the lines " +
        "of `Front__ApiKeysFile`. A Front with no key configured needs none, but then serves only clients on its own " +
        "machine (loopback) and answers 403 to any other." + EdgeNote;

    // Apart from AccessNote: what is refused before any key is looked at (Access/EdgeRegistration).
    private const string EdgeNote =
        " A client address that sent more than `Front__WrongKeysPerMinute` wrong keys is answered 429 with Retry-After. " +
        "A POST, PUT, PATCH or DELETE a browser sends for a page of another site is answered 403, with or without keys; " +
        "without keys, so is a request carrying Forwarded or X-Forwarded-For (unless `Front__TrustProxy`), and a Host " +
        "that is not one of the Front's names is answered 400 (`Front__AllowedHosts`).";

    public static Task DescribeDocumentAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo
        {
            Title = "Bulk",
            Version = "v1",
            Description = "Post a campaign, follow it, steer it. The Front validates a campaign, enqueues it whole on RabbitMQ and " +
                "answers 202; Workers deliver it. Errors are RFC 9457 problem+json naming the field at fault.\n\n" + AccessNote,
        };
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal);
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = AccessNote,
        };

        // Health checks are mapped as plain request delegates, which the generator does not describe.
        document.Paths ??= [];
        document.Paths["/healthz"] = Probe("Liveness: the process answers.", "Always 200 `Healthy` while the process runs.", unhealthy: false);
        document.Paths["/readyz"] = Probe("Readiness: the process reaches the broker and has read both streams.",
            "200 `Healthy` once the broker answers and the outcomes and suppressions streams are read up to where they stood at start; " +
            "503 `Unhealthy` until then, followed by a line per failing check with its reason.",
            unhealthy: true);
        document.Tags ??= new HashSet<OpenApiTag>();
        document.Tags.Add(new OpenApiTag { Name = "Health", Description = "Probes for an orchestrator; no API key." });
        return Task.CompletedTask;
    }

    /// <summary>Marks the operations that need a caller (all but those allowing anonymous) with the Bearer scheme.</summary>
    public static Task DescribeAccessAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<IAllowAnonymous>().Any())
        {
            return Task.CompletedTask;
        }

        operation.Security ??= [];
        operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] });
        return Task.CompletedTask;
    }

    public static Task DescribeSchemaAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        var type = context.JsonTypeInfo.Type;
        if (type == typeof(CampaignRequest) && schema.Properties is { } fields)
        {
            DescribeCampaignRequest(schema, fields);
        }
        else if (context.JsonTypeInfo.Kind == JsonTypeInfoKind.Object && type.Namespace?.StartsWith("Bulk.", StringComparison.Ordinal) == true
            && schema.Properties is { Count: > 0 } properties)
        {
            // The Front writes every property of its answers that is not null and leaves the nulls out: what cannot be
            // null is always there, and nothing else is. (The generator's own guess, the constructor's parameters without
            // a default, would claim nullable dates a new campaign does not have yet.)
            schema.Required = new HashSet<string>(
                context.JsonTypeInfo.Properties
                    .Where(p => p.Get is not null && !p.IsGetNullable && Nullable.GetUnderlyingType(p.PropertyType) is null)
                    .Select(p => p.Name)
                    .Where(properties.ContainsKey),
                StringComparer.Ordinal);
        }

        if (type == typeof(CampaignStatus) && schema.Properties?.TryGetValue("status", out var status) == true && status is OpenApiSchema named)
        {
            named.Enum = [.. StatusNames.Select(name => (JsonNode)JsonValue.Create(name))];
        }

        return Task.CompletedTask;
    }

    /// <summary>What the validator requires, and the recipients, which a converter of their own reads (the generator sees nothing of them).</summary>
    private static void DescribeCampaignRequest(OpenApiSchema schema, IDictionary<string, IOpenApiSchema> fields)
    {
        schema.Required = new HashSet<string>(StringComparer.Ordinal) { "from", "subject", "recipients" };
        schema.Description = "A message and who gets it. `subject`, `text` and `html` are Liquid templates rendered per recipient " +
            "with that recipient's `data`; at least one of `text` and `html` is required.";
        Describe(fields, "from", "The sender, `address` or `Name <address>`; it must be an allowed sender (`Front__AllowedSenders`) when that is set.");
        Describe(fields, "subject", "The subject template.");
        Describe(fields, "text", "The plain-text body template.");
        Describe(fields, "html", "The HTML body template.");
        Describe(fields, "headers", "More headers for every mail (not those Bulk sets itself).");
        Describe(fields, "bounce", "The envelope sender bounces go to; the From address when absent.");
        foreach (var required in new[] { "from", "subject" })
        {
            if (fields.TryGetValue(required, out var field) && field is OpenApiSchema text)
            {
                text.Type = JsonSchemaType.String; // null is refused like a missing field
            }
        }

        Describe(fields, "verp", "Give each recipient its own bounce address (`local+{campaign}-{recipient}@domain`).");
        fields["recipients"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Array,
            MinItems = 1,
            Description = "Who gets it, each once: addresses repeated are dropped (and counted in the answer's `duplicatesDropped`).",
            Items = new OpenApiSchema
            {
                Description = "A bare address, or an address with the values its templates use.",
                OneOf =
                [
                    new OpenApiSchema { Type = JsonSchemaType.String, Description = "The recipient's address." },
                    new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Required = new HashSet<string>(StringComparer.Ordinal) { "email" },
                        Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                        {
                            ["email"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The recipient's address." },
                            ["data"] = new OpenApiSchema
                            {
                                Type = JsonSchemaType.Object | JsonSchemaType.Null,
                                Description = "Values for the templates' placeholders: `{{ name }}` reads `data.name`.",
                            },
                        },
                    },
                ],
            },
        };
    }

    private static void Describe(IDictionary<string, IOpenApiSchema> fields, string name, string description)
    {
        if (fields.TryGetValue(name, out var field) && field is OpenApiSchema schema)
        {
            schema.Description = description;
        }
    }

    private static OpenApiPathItem Probe(string summary, string description, bool unhealthy)
    {
        var responses = new OpenApiResponses { ["200"] = PlainText("Healthy") };
        if (unhealthy)
        {
            responses["503"] = PlainText("Unhealthy");
        }

        return new OpenApiPathItem
        {
            Operations = new Dictionary<HttpMethod, OpenApiOperation>
            {
                [HttpMethod.Get] = new()
                {
                    Summary = summary,
                    Description = description + " Needs no API key.",
                    Tags = new HashSet<OpenApiTagReference> { new("Health") },
                    Responses = responses,
                },
            },
        };
    }

    private static OpenApiResponse PlainText(string body) => new()
    {
        Description = body,
        Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
        {
            ["text/plain"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String }, Example = JsonValue.Create(body) },
        },
    };
}
