using System.Collections.Concurrent;
using Bulk.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Bulk.Tests.Browser;

/// <summary>The API reference at <c>/docs</c>, in a real headless Chromium: it renders the Front's document from the Front alone.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ReferencePageTests(BrokerFixture broker, BrowserFixture browser, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task TheReferencePage_ShowsTheApi_WithEveryRequestMadeToTheFront()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--Front:ApiKeys:0=reference-key-0123456789abcdef");
        var page = await browser.Browser.NewPageAsync();
        var requests = new ConcurrentQueue<string>();
        page.Request += (_, request) => requests.Enqueue(request.Url);

        await page.GotoAsync(new Uri(system.FrontAddress, "/docs").ToString());

        // The operations' summaries come from /openapi/v1.json: seeing them means the page read the document.
        await Expect(page.GetByText("Post a campaign").First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Expect(page.GetByText("Pause a campaign").First).ToBeVisibleAsync();
        var origin = system.FrontAddress.GetLeftPart(UriPartial.Authority);
        foreach (var url in requests)
        {
            output.WriteLine(url);
        }

        Assert.Contains(requests, url => url.EndsWith("/openapi/v1.json", StringComparison.Ordinal));
        Assert.Contains(requests, url => url.EndsWith("/docs/scalar.js", StringComparison.Ordinal));
        var elsewhere = requests.Where(url => !url.StartsWith(origin + "/", StringComparison.Ordinal)
            && !url.StartsWith("data:", StringComparison.Ordinal) && !url.StartsWith("blob:", StringComparison.Ordinal)).ToList();
        Assert.True(elsewhere.Count == 0, $"the page asked elsewhere: {string.Join(", ", elsewhere)}");
    }
}
