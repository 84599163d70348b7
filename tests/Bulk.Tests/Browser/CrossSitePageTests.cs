using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Bulk.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Bulk.Tests.Browser;

/// <summary>
/// A keyless Front and a Worker as real processes, and Chromium on a page of another site (another origin on this
/// machine) that tries what any web page could: a form posted to cancel, a no-cors fetch to replay dead letters, a frame.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class CrossSitePageTests(BrokerFixture broker, BrowserFixture browser, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task APageOfAnotherSite_CannotCancelReplayFrameOrRebind_AndTheCampaignIsDeliveredAsPosted()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = BulkSystem.On(broker.Uri, broker);
        await system.StartFrontProcessAsync();
        var front = system.FrontAddress.GetLeftPart(UriPartial.Authority);
        var id = await system.PostAsync("""{"from":"news@example.com","subject":"s","text":"t","recipients":["cross-site@example.org"]}""");
        await broker.PublishAsync(system.Topology.DeadQueue, "{}"u8.ToArray());
        await Poll.UntilAsync(async () => await DeadLettersAsync(system) == 1, TimeSpan.FromSeconds(15));

        // "localhost" and "127.0.0.1" are different sites to the browser, as evil.example and this Front would be.
        await using var elsewhere = await AnotherSiteAsync($"""
            <!doctype html><title>another site</title>
            <form id="cancel" method="post" action="{front}/campaigns/{id}/cancel" target="sink"><input name="confirm" value="yes"></form>
            <iframe name="sink"></iframe>
            <iframe id="framed" src="{front}/"></iframe>
            <script>
              fetch("{front}/dead-letters/replay", {"{"} method: "POST", mode: "no-cors" {"}"});
              document.getElementById("cancel").submit();
            </script>
            """);
        var page = await browser.Browser.NewPageAsync();
        var answers = new ConcurrentDictionary<string, IResponse>();
        page.Response += (_, response) => answers[new Uri(response.Url).AbsolutePath] = response;

        await page.GotoAsync(elsewhere.Url);
        await Poll.UntilAsync(() => answers.ContainsKey($"/campaigns/{id}/cancel") && answers.ContainsKey("/dead-letters/replay") && answers.ContainsKey("/"),
            TimeSpan.FromSeconds(30));

        foreach (var (path, response) in answers)
        {
            output.WriteLine($"{response.Status} {path}");
        }

        Assert.Equal((int)HttpStatusCode.Forbidden, answers[$"/campaigns/{id}/cancel"].Status);
        Assert.Equal((int)HttpStatusCode.Forbidden, answers["/dead-letters/replay"].Status);
        Assert.Contains("frame-ancestors 'none'", (await answers["/"].AllHeadersAsync())["content-security-policy"]);
        var framed = page.Frames.Single(f => f.ParentFrame is not null && f.Name != "sink");
        Assert.DoesNotContain("Bulk", await framed.ContentAsync(), StringComparison.Ordinal);
        Assert.Equal("queued", (await system.StatusAsync(id)).Status);
        Assert.Equal(1, await DeadLettersAsync(system));

        // DNS rebinding: the same request under a name of the attacker's is refused.
        using (var rebound = new HttpRequestMessage(HttpMethod.Get, "/campaigns"))
        {
            rebound.Headers.Host = $"evil.example:{system.FrontAddress.Port}";
            Assert.Equal(HttpStatusCode.BadRequest, (await system.Http.SendAsync(rebound)).StatusCode);
        }

        await system.StartWorkerProcessAsync(sink.Port);
        var done = await system.WaitForStatusAsync(id, s => s.Status is "completed" or "completed_with_failures" or "cancelled", TimeSpan.FromSeconds(60));
        Assert.Equal("completed", done.Status);
        Assert.Equal(["cross-site@example.org"], await sink.WaitForDistinctAsync(1, TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/docs/")]
    public async Task TheFrontsOwnPages_WorkUnderTheirContentSecurityPolicy(string path)
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var page = await browser.Browser.NewPageAsync();
        var violations = new ConcurrentQueue<string>();
        page.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                violations.Enqueue(message.Text);
            }
        };

        var response = await page.GotoAsync(new Uri(system.FrontAddress, path).ToString());
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);

        Assert.Contains("frame-ancestors 'none'", (await response!.AllHeadersAsync())["content-security-policy"]);
        Assert.True(violations.IsEmpty, string.Join("\n", violations));
    }

    private static async Task<int> DeadLettersAsync(BulkSystem system)
    {
        var response = await system.Http.GetAsync("/dead-letters");
        if (!response.IsSuccessStatusCode)
        {
            return -1;
        }

        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("count").GetInt32();
    }

    /// <summary>A web server of another site: <paramref name="html"/> at <c>http://localhost:{port}/</c>.</summary>
    private static async Task<AnotherSite> AnotherSiteAsync(string html)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/", () => Results.Content(html, "text/html; charset=utf-8"));
        await app.StartAsync();
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()).Port;
        return new AnotherSite(app, $"http://localhost:{port}/");
    }

    private sealed record AnotherSite(WebApplication App, string Url) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
