using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Bulk.Tests.Reference;

/// <summary>The Front's <c>/openapi/v1.json</c>, with a JSON Schema validator for the answers it describes.</summary>
/// <remarks>
/// The whole document is registered under a base URI, so that the <c>$ref: #/components/schemas/…</c> inside a
/// response's schema resolve as they would for any client reading the document.
/// </remarks>
public sealed class OpenApiDocument
{
    // One address per fetched document: the library's registries do not let a second document take the first one's.
    private readonly Uri baseUri = new($"https://bulk.test/{Guid.NewGuid():N}/openapi/v1.json");
    private readonly BuildOptions build;

    private OpenApiDocument(JsonNode root)
    {
        Root = root;
        build = new BuildOptions();
        build.SchemaRegistry.Register(new JsonElementBaseDocument(JsonSerializer.SerializeToElement(root), baseUri));
    }

    public JsonNode Root { get; }

    public static async Task<OpenApiDocument> FetchAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/openapi/v1.json");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET /openapi/v1.json: {(int)response.StatusCode} {text}");
        return new OpenApiDocument(JsonNode.Parse(text)!);
    }

    /// <summary>The operation for <paramref name="method"/> on <paramref name="path"/> (a template, as the document writes it), or null.</summary>
    public JsonObject? Operation(string method, string path) =>
        Root["paths"]?[path]?[method.ToLowerInvariant()] as JsonObject;

    /// <summary>
    /// Checks that <paramref name="response"/> is one the document lists for the operation (its status and media type),
    /// and that its body validates against the schema given for them; returns the schema, resolved, for the caller to
    /// check it says something.
    /// </summary>
    public async Task<JsonObject?> AssertDescribesAsync(string method, string path, HttpResponseMessage response)
    {
        var operation = Operation(method, path) ?? throw new Xunit.Sdk.XunitException($"{method} {path} is not in the document");
        var status = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var body = await response.Content.ReadAsStringAsync();
        var described = operation["responses"]?[status] as JsonObject
            ?? throw new Xunit.Sdk.XunitException($"{method} {path} answered {status}, which the document does not list: {body}");
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (described["content"] is not JsonObject content || content.Count == 0)
        {
            Assert.True(body.Length == 0, $"{method} {path} {status}: the document describes no body, the answer has one: {body}");
            return null;
        }

        var media = content[mediaType ?? ""] as JsonObject
            ?? throw new Xunit.Sdk.XunitException($"{method} {path} {status} answered {mediaType}; the document lists {string.Join(", ", content.Select(c => c.Key))}");
        Assert.NotNull(media["schema"]);
        if (mediaType is not ("application/json" or "application/problem+json"))
        {
            return null;
        }

        var pointer = $"/paths/{Escape(path)}/{method.ToLowerInvariant()}/responses/{status}/content/{Escape(mediaType)}/schema";
        var results = Validate(pointer, body);
        Assert.True(results.IsValid, $"{method} {path} {status}: the body does not match the document's schema: {Describe(results)}\n{body}");
        return Resolve(media["schema"]!);
    }

    /// <summary>Validates <paramref name="json"/> against the schema at <paramref name="pointer"/> in the document.</summary>
    /// <remarks>A <c>+</c> in the pointer (application/problem+json) is percent-encoded: the library finds nothing at the pointer otherwise.</remarks>
    public EvaluationResults Validate(string pointer, string json)
    {
        var schema = JsonSchema.FromText($$"""{"$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"{{baseUri}}#{{pointer.Replace("+", "%2B", StringComparison.Ordinal)}}"}""", build,
            new Uri($"https://bulk.test/{Guid.NewGuid():N}/check.json"));
        using var instance = JsonDocument.Parse(json);
        return schema.Evaluate(instance.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
    }

    /// <summary>A schema with its <c>$ref</c> to the components followed.</summary>
    public JsonObject Resolve(JsonNode schema)
    {
        var current = schema.AsObject();
        while (current["$ref"]?.GetValue<string>() is { } reference)
        {
            Assert.StartsWith("#/components/schemas/", reference);
            current = Root["components"]!["schemas"]![reference["#/components/schemas/".Length..]]!.AsObject();
        }

        return current;
    }

    public static string Escape(string segment) => segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Describe(EvaluationResults results) =>
        string.Join("; ", (results.Details ?? []).Append(results)
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key} {e.Value}")));
}
