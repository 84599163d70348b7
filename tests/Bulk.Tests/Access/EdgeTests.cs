using System.Net;
using System.Net.Http.Headers;
using Bulk.Broker.Hosting;
using Bulk.Broker.Suppressions;
using Bulk.Front;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Access;

/// <summary>
/// A keyless Front trusts this machine, and a browser here is on this machine for every site it visits: what such a
/// site's page may not do, what a proxy may not hide, and the wrong keys a client may try.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class EdgeTests(BrokerFixture broker)
{
    private const string Key = "edge-key-0123456789abcdef";
    private const string Campaign = """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"]}""";

    [Fact]
    public async Task WithoutKeys_AChangeAskedByAPageOfAnotherSite_IsA403_AndChangesNothing()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(Campaign); // neither Origin nor Sec-Fetch-Site: curl, a server
        var self = system.FrontAddress.GetLeftPart(UriPartial.Authority);

        HttpResponseMessage[] refused =
        [
            await SendAsync(system, HttpMethod.Post, $"/campaigns/{id}/cancel", null, ("Origin", "http://evil.example")),
            await SendAsync(system, HttpMethod.Post, $"/campaigns/{id}/cancel", null, ("Sec-Fetch-Site", "cross-site")),
            await SendAsync(system, HttpMethod.Post, $"/campaigns/{id}/pause", null, ("Sec-Fetch-Site", "same-site"), ("Origin", "http://127.0.0.1:1")),
            await SendAsync(system, HttpMethod.Post, "/dead-letters/replay", null, ("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")),
            await SendAsync(system, HttpMethod.Post, "/campaigns", JsonBody.Of(Campaign), ("Origin", "null")),
            await SendAsync(system, HttpMethod.Delete, "/suppressions/a@example.org", null, ("Origin", "http://evil.example")),
        ];

        foreach (var response in refused)
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("another site", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal("queued", (await system.StatusAsync(id)).Status);
        Assert.Equal(1u, await system.WorkQueueDepthAsync());

        var fromThePage = await SendAsync(system, HttpMethod.Post, $"/campaigns/{id}/cancel", null, ("Origin", self), ("Sec-Fetch-Site", "same-origin"));
        Assert.Equal(HttpStatusCode.OK, fromThePage.StatusCode);
        Assert.Equal("cancelled", (await system.StatusAsync(id)).Status);
    }

    [Fact]
    public async Task WithKeys_APageOfAnotherSite_CannotChangeAnythingEither()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={Key}");

        var crossSite = await SendAsync(system, HttpMethod.Post, "/campaigns", JsonBody.Of(Campaign), ("Authorization", $"Bearer {Key}"), ("Sec-Fetch-Site", "cross-site"));
        var direct = await SendAsync(system, HttpMethod.Post, "/campaigns", JsonBody.Of(Campaign), ("Authorization", $"Bearer {Key}"));

        Assert.Equal(HttpStatusCode.Forbidden, crossSite.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, direct.StatusCode);
        Assert.Equal(1u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task AMailboxProvidersOneClickUnsubscribe_ComingFromAnotherSite_StillUnsubscribes()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var token = UnsubscribeToken.Create(BulkSystem.UnsubscribeSecret, "c1", "one-click@example.org");

        var response = await SendAsync(system, HttpMethod.Post, $"/unsubscribe/{token}",
            new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]), ("Origin", "https://mail.example"), ("Sec-Fetch-Site", "cross-site"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/suppressions/one-click@example.org")).StatusCode == HttpStatusCode.OK,
            TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task WithoutKeys_AForeignHostIsA400_WhileTheFrontsNamesAndAddressesAreServed()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--Front:AllowedHosts:0=bulk.internal");
        var port = system.FrontAddress.Port;

        foreach (var path in new[] { "/", "/campaigns", "/docs/" })
        {
            var rebound = await SendAsync(system, HttpMethod.Get, path, null, ("Host", $"evil.example:{port}"));
            Assert.Equal(HttpStatusCode.BadRequest, rebound.StatusCode);
            Assert.Equal("application/problem+json", rebound.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Front__AllowedHosts", await rebound.Content.ReadAsStringAsync());
        }

        foreach (var host in new[] { $"localhost:{port}", $"127.0.0.1:{port}", $"bulk.internal:{port}" })
        {
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(system, HttpMethod.Get, "/campaigns", null, ("Host", host))).StatusCode);
        }
    }

    [Fact]
    public async Task WithoutKeys_ARequestThroughAProxyIsA403_UnlessTheProxyIsTrusted_ThenItsClientDecides()
    {
        await using (var untrusting = await BulkSystem.StartFrontAsync(broker))
        {
            var forwardedFor = await SendAsync(untrusting, HttpMethod.Get, "/campaigns", null, ("X-Forwarded-For", "127.0.0.1"));
            var forwarded = await SendAsync(untrusting, HttpMethod.Get, "/campaigns", null, ("Forwarded", "for=203.0.113.5"));

            foreach (var response in new[] { forwardedFor, forwarded })
            {
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                Assert.Contains("Front__TrustProxy", await response.Content.ReadAsStringAsync());
            }

            Assert.Equal(HttpStatusCode.OK, (await untrusting.Http.GetAsync("/campaigns")).StatusCode);
        }

        await using var trusting = await BulkSystem.StartFrontAsync(broker, "--Front:TrustProxy=true");
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(trusting, HttpMethod.Get, "/campaigns", null, ("X-Forwarded-For", "203.0.113.5"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(trusting, HttpMethod.Get, "/campaigns", null, ("X-Forwarded-For", "127.0.0.1"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(trusting, HttpMethod.Get, "/campaigns", null, ("Forwarded", "for=127.0.0.1"))).StatusCode);
    }

    [Fact]
    public async Task ThePage_TheReference_AndTheUnsubscribePages_MayNotBeFramed_Sniffed_OrReferredFrom()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var token = UnsubscribeToken.Create(BulkSystem.UnsubscribeSecret, "c1", "a@example.org");

        foreach (var path in new[] { "/", "/app.js", "/docs/", $"/unsubscribe/{token}", "/unsubscribe/not-a-token", "/campaigns" })
        {
            var response = await system.Http.GetAsync(path);
            Assert.True(response.IsSuccessStatusCode || path.EndsWith("not-a-token", StringComparison.Ordinal), $"{path}: {(int)response.StatusCode}");
            Assert.Contains("frame-ancestors 'none'", Header(response, "Content-Security-Policy"));
            Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
            Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
        }
    }

    [Fact]
    public async Task WrongKeysFromOneClient_PastTheLimit_Are429WithRetryAfter_TheRightKeyToo_WhileOtherClientsAreServed()
    {
        // Behind a trusted proxy on loopback, X-Forwarded-For gives each request the address of a client of its own.
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={Key}", "--Front:WrongKeysPerMinute=3", "--Front:TrustProxy=true");
        const string Guesser = "198.51.100.1", Other = "198.51.100.2";

        var firstThree = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            firstThree.Add(await AsClientAsync(system, Guesser, $"wrong-key-{i}-0123456789abcdef"));
        }

        var fourth = await AsClientAsync(system, Guesser, "wrong-key-3-0123456789abcdef");
        var rightKeyOfTheGuesser = await AsClientAsync(system, Guesser, Key);
        var healthOfTheGuesser = await SendAsync(system, HttpMethod.Get, "/healthz", null, ("X-Forwarded-For", Guesser));
        var otherWrong = await AsClientAsync(system, Other, "wrong-key-x-0123456789abcdef");
        var otherRight = await AsClientAsync(system, Other, Key);

        Assert.All(firstThree, r => Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode));
        foreach (var throttled in new[] { fourth, rightKeyOfTheGuesser })
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
            Assert.Equal("application/problem+json", throttled.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Front__WrongKeysPerMinute", await throttled.Content.ReadAsStringAsync());
            Assert.InRange(throttled.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 20);
        }

        Assert.Equal(HttpStatusCode.OK, healthOfTheGuesser.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, otherWrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, otherRight.StatusCode);
    }

    [Theory]
    [InlineData("--Front:WrongKeysPerMinute=-1", "Front__WrongKeysPerMinute")]
    [InlineData("--Front:AllowedHosts:0=bulk.example.com:8080", "Front__AllowedHosts__0")]
    public async Task ABadEdgeSetting_StopsTheFrontWithALineNamingIt(string setting, string named)
    {
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", setting]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        var line = ConfigurationErrors.OneLine("Bulk.Front", e.Failures);
        Assert.DoesNotContain('\n', line);
        Assert.Contains(named, line);
    }

    private static Task<HttpResponseMessage> AsClientAsync(BulkSystem system, string client, string key) =>
        SendAsync(system, HttpMethod.Get, "/campaigns", null, ("X-Forwarded-For", client), ("Authorization", $"Bearer {key}"));

    private static async Task<HttpResponseMessage> SendAsync(
        BulkSystem system, HttpMethod method, string path, HttpContent? content, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        foreach (var (name, value) in headers)
        {
            if (name == "Host")
            {
                request.Headers.Host = value;
            }
            else if (name == "Authorization")
            {
                request.Headers.Authorization = AuthenticationHeaderValue.Parse(value);
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        var response = await system.Http.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(", ", values) : "";
}
