using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bulk.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Bulk.Tests.Reference;

/// <summary>The OpenAPI document describes every endpoint the Front maps, and the Front's real answers match it.</summary>
[Collection(BrokerCollection.Name)]
public sealed partial class OpenApiTests(BrokerFixture broker)
{
    private const string Key = "openapi-key-0123456789abcdef";

    /// <summary>Endpoints mapped but rightly left out of the document, each with why.</summary>
    private static readonly (Regex Route, string Why)[] NotDescribed =
    [
        (new("^/$"), "the browser page, not an API"),
        (new(@"^/app\.(js|css)$"), "the browser page's own script and style"),
        (new(@"^/openapi/\{documentName\}\.json$"), "the OpenAPI document itself"),
        (new("^/docs(/|$)"), "the reference page (Scalar) and its assets"),
        (new("^/metrics$"), "the Prometheus scrape, in Prometheus's text format, for a scraper rather than a client"),
    ];

    private static string Campaign(string from = "News <news@example.com>") =>
        $$$"""{"from":"{{{from}}}","subject":"Hello {{ name }}","text":"Hi {{ name }}.","recipients":[{"email":"ann@example.org","data":{"name":"Ann"}},"bob@example.org"]}""";

    [Fact]
    public async Task EveryMappedEndpoint_IsInTheDocumentWithItsMethod_AndTheDocumentHasNoOther()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var document = await OpenApiDocument.FetchAsync(system.Http);

        var mapped = system.FrontServices.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(method => (Method: method, Path: Template(e.RoutePattern.RawText!))))
            .Distinct()
            .ToList();
        var described = document.Root["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Where(o => o.Key != "parameters").Select(o => (Method: o.Key.ToUpperInvariant(), Path: path.Key)))
            .ToList();

        var missing = mapped.Where(e => !NotDescribed.Any(n => n.Route.IsMatch(e.Path)) && !described.Contains(e)).ToList();
        Assert.True(missing.Count == 0, $"mapped but not in the document: {string.Join(", ", missing)}");
        var phantom = described.Where(d => !mapped.Contains(d)).ToList();
        Assert.True(phantom.Count == 0, $"in the document but not mapped: {string.Join(", ", phantom)}");
        // Not vacuous: the Front's API is there, and what is left out is only what the list names.
        Assert.Contains(("POST", "/campaigns"), described);
        Assert.Contains(("GET", "/readyz"), described);
        Assert.Contains(mapped, e => e.Path == "/openapi/{documentName}.json");
        Assert.True(described.Count >= 18, $"only {described.Count} operations described");
    }

    [Fact]
    public async Task TheDocument_SaysWhatPostingNeeds_AndWhatEachEndpointCanAnswer()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var document = await OpenApiDocument.FetchAsync(system.Http);

        var post = document.Operation("POST", "/campaigns")!;
        var header = post["parameters"]!.AsArray().Single(p => p!["name"]!.GetValue<string>() == "Idempotency-Key")!;
        Assert.Equal("header", header["in"]!.GetValue<string>());
        Assert.Equal(["202", "400", "401", "403", "408", "413", "415", "422", "429", "503"], Statuses(post));
        var validation = document.Resolve(post["responses"]!["400"]!["content"]!["application/problem+json"]!["schema"]!);
        Assert.NotNull(validation["properties"]!["errors"]);
        Assert.Equal(["bearer"], [document.Root["components"]!["securitySchemes"]!["Bearer"]!["scheme"]!.GetValue<string>()]);
        Assert.Contains("loopback", document.Root["components"]!["securitySchemes"]!["Bearer"]!["description"]!.GetValue<string>());
        Assert.NotNull(post["security"]);
        Assert.Null(document.Operation("GET", "/healthz")!["security"]);

        // What each endpoint can really give, no more: a 409 only where a campaign's state can forbid the change.
        Assert.Equal(["200", "401", "403", "404", "409", "503"], Statuses(document.Operation("POST", "/campaigns/{id}/cancel")!));
        Assert.Equal(["200", "401", "403", "404"], Statuses(document.Operation("GET", "/campaigns/{id}")!));
        Assert.Equal(["200", "401", "403", "503"], Statuses(document.Operation("GET", "/dead-letters")!));
        Assert.Equal(["204", "401", "403", "404", "503"], Statuses(document.Operation("DELETE", "/suppressions/{email}")!));

        // The example is a campaign the Front takes as it stands.
        var example = post["requestBody"]!["content"]!["application/json"]!["example"]!;
        Assert.Contains(example["recipients"]!.AsArray(), r => r is JsonObject { } o && o["data"] is JsonObject);
        var accepted = await system.Http.PostAsync("/campaigns", JsonBody.Of(example.ToJsonString()));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await document.AssertDescribesAsync("POST", "/campaigns", accepted);
    }

    [Fact]
    public async Task RealAnswers_MatchTheDocumentsSchemas()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--Front:MaxBodyBytes=65536");
        var http = system.Http;
        var document = await OpenApiDocument.FetchAsync(http);
        var checkedSchemas = new List<JsonObject>();

        async Task<HttpResponseMessage> Check(string method, string path, HttpResponseMessage response, HttpStatusCode expected)
        {
            Assert.True(response.StatusCode == expected,
                $"{method} {path}: expected {(int)expected}, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            if (await document.AssertDescribesAsync(method, path, response) is { } schema)
            {
                checkedSchemas.Add(schema);
            }

            return response;
        }

        var accepted = await Check("POST", "/campaigns", await http.PostAsync("/campaigns", JsonBody.Of(Campaign())), HttpStatusCode.Accepted);
        var id = (await accepted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
        await Check("POST", "/campaigns", await http.PostAsync("/campaigns", JsonBody.Of("""{"from":"news@example.com","recipients":[]}""")),
            HttpStatusCode.BadRequest);
        var unsupported = await Check("POST", "/campaigns", await http.PostAsync("/campaigns", new StringContent(Campaign(), Encoding.UTF8, "text/plain")),
            HttpStatusCode.UnsupportedMediaType);
        // Describing the body did not hand the 415 to routing: the handler's own answer closes the connection and names the type.
        Assert.True(unsupported.Headers.ConnectionClose);
        Assert.Contains("text/plain", await unsupported.Content.ReadAsStringAsync());
        await Check("POST", "/campaigns", await http.PostAsync("/campaigns", JsonBody.Of(
            $$"""{"from":"a@example.com","subject":"s","text":"{{new string('x', 70_000)}}","recipients":["a@example.org"]}""")),
            HttpStatusCode.RequestEntityTooLarge);
        await Check("POST", "/campaigns", await PostKeyedAsync(http, "same-key", Campaign()), HttpStatusCode.Accepted);
        await Check("POST", "/campaigns", await PostKeyedAsync(http, "same-key", Campaign("other@example.com")), HttpStatusCode.UnprocessableEntity);

        await Check("GET", "/campaigns", await http.GetAsync("/campaigns"), HttpStatusCode.OK);
        await Check("GET", "/campaigns", await http.GetAsync("/campaigns?limit=many"), HttpStatusCode.BadRequest);
        await Check("GET", "/campaigns/{id}", await http.GetAsync($"/campaigns/{id}"), HttpStatusCode.OK);
        await Check("GET", "/campaigns/{id}", await http.GetAsync("/campaigns/no-such-campaign"), HttpStatusCode.NotFound);
        await Check("GET", "/campaigns/{id}/failures", await http.GetAsync($"/campaigns/{id}/failures"), HttpStatusCode.OK);
        await Check("GET", "/campaigns/{id}/failures", await http.GetAsync($"/campaigns/{id}/failures?limit=0"), HttpStatusCode.BadRequest);
        await Check("POST", "/campaigns/{id}/pause", await http.PostAsync($"/campaigns/{id}/pause", null), HttpStatusCode.OK);
        await Check("POST", "/campaigns/{id}/cancel", await http.PostAsync($"/campaigns/{id}/cancel", null), HttpStatusCode.OK);
        await Check("POST", "/campaigns/{id}/resume", await http.PostAsync($"/campaigns/{id}/resume", null), HttpStatusCode.Conflict);
        await Check("POST", "/campaigns/{id}/pause", await http.PostAsync("/campaigns/no-such-campaign/pause", null), HttpStatusCode.NotFound);

        // A finished campaign's events end at once; each carries the status the document describes.
        var events = await Check("GET", "/campaigns/{id}/events", await http.GetAsync($"/campaigns/{id}/events"), HttpStatusCode.OK);
        var data = (await events.Content.ReadAsStringAsync()).Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(data);
        foreach (var line in data)
        {
            var result = document.Validate("/components/schemas/CampaignStatus", line["data: ".Length..]);
            Assert.True(result.IsValid, line);
        }

        await Check("GET", "/dead-letters", await http.GetAsync("/dead-letters"), HttpStatusCode.OK);
        await Check("POST", "/dead-letters/replay", await http.PostAsync("/dead-letters/replay", null), HttpStatusCode.OK);

        await Check("POST", "/suppressions", await http.PostAsJsonAsync("/suppressions", new { emails = new[] { "gone@example.org" }, note = "asked" }),
            HttpStatusCode.OK);
        await Check("POST", "/suppressions", await http.PostAsJsonAsync("/suppressions", new { emails = new[] { "not an address" } }),
            HttpStatusCode.BadRequest);
        await Check("POST", "/suppressions", await http.PostAsync("/suppressions", new StringContent("gone@example.org", Encoding.UTF8, "text/plain")),
            HttpStatusCode.UnsupportedMediaType);
        await Check("GET", "/suppressions", await http.GetAsync("/suppressions"), HttpStatusCode.OK);
        await Check("GET", "/suppressions", await http.GetAsync("/suppressions?offset=-1"), HttpStatusCode.BadRequest);
        await Check("GET", "/suppressions/{email}", await http.GetAsync("/suppressions/gone@example.org"), HttpStatusCode.OK);
        await Check("DELETE", "/suppressions/{email}", await http.DeleteAsync("/suppressions/gone@example.org"), HttpStatusCode.NoContent);
        await Check("GET", "/suppressions/{email}", await http.GetAsync("/suppressions/gone@example.org"), HttpStatusCode.NotFound);

        await Check("GET", "/unsubscribe/{token}", await http.GetAsync("/unsubscribe/not-a-token"), HttpStatusCode.BadRequest);
        await Check("GET", "/healthz", await http.GetAsync("/healthz"), HttpStatusCode.OK);

        // Not vacuous: each JSON schema used names properties, and the answers' own say which are always there.
        Assert.True(checkedSchemas.Count >= 25, $"only {checkedSchemas.Count} bodies checked");
        Assert.All(checkedSchemas, s => Assert.NotEmpty(s["properties"]!.AsObject()));
        Assert.Contains(checkedSchemas, s => s["properties"]!["errors"] is not null);
        Assert.True(checkedSchemas.Count(s => s["required"] is JsonArray { Count: > 0 }) >= 12);
    }

    [Fact]
    public async Task WithKeys_TheRefusals_401_403_429_MatchTheDocument_WhichNeedsNoKeyItself()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker,
            $"--Front:ApiKeys:0={Key}", "--Front:CampaignsPerMinute=1", "--Front:AllowedSenders:0=news@example.com");
        var document = await OpenApiDocument.FetchAsync(system.Http);
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/docs/")).StatusCode);

        await document.AssertDescribesAsync("GET", "/campaigns", await Expect(system.Http.GetAsync("/campaigns"), HttpStatusCode.Unauthorized));
        await document.AssertDescribesAsync("POST", "/campaigns", await Expect(SendAsync(system.Http, HttpMethod.Post, "/campaigns", JsonBody.Of(Campaign("other@example.com"))), HttpStatusCode.Forbidden));
        await document.AssertDescribesAsync("POST", "/campaigns", await Expect(SendAsync(system.Http, HttpMethod.Post, "/campaigns", JsonBody.Of(Campaign())), HttpStatusCode.TooManyRequests));
        await document.AssertDescribesAsync("GET", "/campaigns", await Expect(SendAsync(system.Http, HttpMethod.Get, "/campaigns"), HttpStatusCode.OK));
    }

    [Fact]
    public async Task WithTheBrokerAway_The503s_MatchTheDocument()
    {
        var port = TestSmtpServer.FreePort();
        await using var system = await BulkSystem.StartFrontOnAsync(broker, $"amqp://guest:guest@127.0.0.1:{port}/");
        var document = await OpenApiDocument.FetchAsync(system.Http);

        await document.AssertDescribesAsync("POST", "/campaigns", await Expect(system.Http.PostAsync("/campaigns", JsonBody.Of(Campaign())), HttpStatusCode.ServiceUnavailable));
        await document.AssertDescribesAsync("GET", "/dead-letters", await Expect(system.Http.GetAsync("/dead-letters"), HttpStatusCode.ServiceUnavailable));
        await document.AssertDescribesAsync("GET", "/readyz", await Expect(system.Http.GetAsync("/readyz"), HttpStatusCode.ServiceUnavailable));
    }

    [Fact]
    public async Task AWrongBody_FailsTheDocumentsSchema()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var document = await OpenApiDocument.FetchAsync(system.Http);
        const string accepted = "/paths/~1campaigns/post/responses/202/content/application~1json/schema";
        const string status = "/components/schemas/CampaignStatus";

        Assert.True(document.Validate(accepted, """{"id":"a","status":"queued","total":2,"duplicatesDropped":0}""").IsValid);
        Assert.False(document.Validate(accepted, """{"id":"a","status":"queued","duplicatesDropped":0}""").IsValid);
        Assert.False(document.Validate(accepted, """{"id":"a","status":"queued","total":"2","duplicatesDropped":0}""").IsValid);
        Assert.False(document.Validate(accepted, """{"title":"Unknown campaign","status":404}""").IsValid);
        Assert.False(document.Validate(status, """{"id":"a","status":"queued","total":2}""").IsValid);
        var cancelled = """{"id":"a","status":"cancelled","total":2,"delivered":0,"failed":0,"deferred":0,"pending":0,"ratePerSecond":0,"version":3,"suppressed":0,"isFinished":true,"cancelledAt":"2026-11-26T06:00:00+00:00"}""";
        Assert.True(document.Validate(status, cancelled).IsValid);
        Assert.False(document.Validate(status, cancelled.Replace("\"cancelled\"", "\"gone\"", StringComparison.Ordinal)).IsValid);
    }

    [Fact]
    public async Task TheReferencePage_TakesNothingFromElsewhere_AndItsScriptsAreServedHere()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={Key}");

        var page = await Expect(system.Http.GetAsync("/docs/"), HttpStatusCode.OK);
        var html = await page.Content.ReadAsStringAsync();

        var sources = SourceAttribute().Matches(html).Select(m => m.Groups["url"].Value).ToList();
        Assert.Contains("scalar.js", sources);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"withDefaultFonts\":false", html);
        foreach (var source in sources)
        {
            var asset = await system.Http.GetAsync(new Uri(new Uri(system.FrontAddress, "/docs/"), source));
            Assert.True(asset.StatusCode == HttpStatusCode.OK, $"{source}: {(int)asset.StatusCode}");
            Assert.True(asset.Content.Headers.ContentLength is null or > 0, $"{source} is empty");
        }

        // The page reads the document from this Front, with no key.
        Assert.Contains("openapi/v1.json", html);
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/openapi/v1.json")).StatusCode);
    }

    private static List<string> Statuses(JsonObject operation) => [.. operation["responses"]!.AsObject().Select(r => r.Key).Order(StringComparer.Ordinal)];

    /// <summary>The route as the document writes it: no trailing slash, parameters without constraints.</summary>
    private static string Template(string route)
    {
        var path = "/" + route.Trim('/');
        return RouteParameter().Replace(path, m => $"{{{m.Groups["name"].Value}}}");
    }

    private static async Task<HttpResponseMessage> Expect(Task<HttpResponseMessage> sending, HttpStatusCode expected)
    {
        var response = await sending;
        Assert.True(response.StatusCode == expected,
            $"expected {(int)expected}, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return response;
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        return http.SendAsync(request);
    }

    private static Task<HttpResponseMessage> PostKeyedAsync(HttpClient http, string key, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = JsonBody.Of(body) };
        request.Headers.Add("Idempotency-Key", key);
        return http.SendAsync(request);
    }

    [GeneratedRegex(@"\{\*{0,2}(?<name>[^}:=?]+)[^}]*\}")]
    private static partial Regex RouteParameter();

    [GeneratedRegex("""(?:src|href)\s*=\s*["'](?<url>[^"']+)["']""")]
    private static partial Regex SourceAttribute();
}
