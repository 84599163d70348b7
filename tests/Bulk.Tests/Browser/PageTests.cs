using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Bulk.Tests.Browser;

/// <summary>The page, in a real headless Chromium, against a real Front and Worker on loopback.</summary>
[Collection(BrokerCollection.Name)]
public sealed class PageTests(BrokerFixture broker, BrowserFixture browser, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    private static string Csv(int count)
    {
        var csv = new StringBuilder("email,name\n");
        for (var i = 0; i < count; i++)
        {
            csv.Append(SampleCampaigns.Address(i)).Append(",\"Name ").Append(i).Append("\"\n");
        }

        return csv.ToString();
    }

    private static async Task FillAsync(IPage page, string recipients, string subject = "Hello {{ name }}")
    {
        await page.GetByLabel("From").FillAsync("News <news@example.com>");
        await page.GetByLabel("Subject").FillAsync(subject);
        await page.GetByLabel("Text body").FillAsync("Hi {{ name }}, this is for {{ email }}.");
        await page.GetByLabel("Recipients", new() { Exact = true }).FillAsync(recipients);
    }

    [Fact]
    public async Task APastedCsvCampaign_IsAcceptedAtOnce_AndItsProgressAndFailuresShowLive()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(7) ? (550, "5.1.1 no such user here") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var page = await browser.Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1100, Height = 1200 } });

        await page.GotoAsync(system.FrontAddress.ToString());
        await FillAsync(page, Csv(200));
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await Expect(page.Locator("#form-status")).ToContainTextAsync("Accepted, 200 recipients", new() { Timeout = 1000 });
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send" })).ToBeEnabledAsync();
        await Expect(page.Locator("#progress-text")).ToHaveTextAsync("100 %", new() { Timeout = 60_000 });
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("completed with failures");
        await Expect(page.Locator("#count-delivered")).ToHaveTextAsync("199");
        await Expect(page.Locator("#failures")).ToContainTextAsync(SampleCampaigns.Address(7));
        await Expect(page.Locator("#failures")).ToContainTextAsync("550");
        var mail = smtp.Mails.First(m => m.Recipient == SampleCampaigns.Address(3));
        Assert.Equal("Hello Name 3", mail.Message.Subject);

        var screenshot = Path.Combine(Repository.Root, ".run", "artifacts", "finished-campaign.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        output.WriteLine($"screenshot: {screenshot}");

        // The state comes from the server: a new tab shows the same campaign, and lists it among the recent ones.
        var other = await browser.Browser.NewPageAsync();
        await other.GotoAsync(page.Url);
        await Expect(other.Locator("#count-delivered")).ToHaveTextAsync("199");
        await Expect(other.Locator("#recent-list")).ToContainTextAsync("200 recipients");
    }

    [Fact]
    public async Task AFrontWithApiKeys_AsksForTheKey_ThenSendsAndFollowsTheCampaignLiveWithIt()
    {
        const string key = "page-key-0123456789abcdef";
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={key}");
        await system.StartWorkerAsync(smtp);
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync(system.FrontAddress.ToString());

        // The page itself is public; the first API call is refused and the page asks for a key.
        await Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
        await FillAsync(page, Csv(20));
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#form-status")).ToContainTextAsync("Unauthorized");
        Assert.Equal(0u, await system.WorkQueueDepthAsync());

        await page.GetByLabel("API key").FillAsync("wrong-key-0123456789abcdef");
        await page.GetByLabel("API key").DispatchEventAsync("change");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#access-help")).ToContainTextAsync("refused");

        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByLabel("API key").DispatchEventAsync("change");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await Expect(page.Locator("#form-status")).ToContainTextAsync("Accepted, 20 recipients");
        await Expect(page.Locator("#progress-text")).ToHaveTextAsync("100 %", new() { Timeout = 30_000 });
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("completed");
        await Expect(page.Locator("#count-delivered")).ToHaveTextAsync("20");
        await Expect(page.Locator("#recent-list")).ToContainTextAsync("20 recipients");
    }

    [Fact]
    public async Task WithAnOrdinaryKeyThePageShowsItsOwnCampaignsOnly_AndWithAnAdminKeyEveryOne()
    {
        const string one = "page-one-0123456789abcdef", two = "page-two-0123456789abcdef", admin = "page-admin-0123456789abcdef";
        // No Worker: the campaign stays queued, so that each key's view of it can be seen, and steered.
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={one}", $"--Front:ApiKeys:1={two}", $"--Front:AdminKeys:0={admin}");
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync(system.FrontAddress.ToString());

        await UseKeyAsync(page, one);
        await FillAsync(page, Csv(3), subject: "Tenant one's news");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#form-status")).ToContainTextAsync("Accepted, 3 recipients");
        await Expect(page.Locator("#view-subject")).ToHaveTextAsync("Tenant one's news");
        await Expect(page.Locator("#recent-list")).ToContainTextAsync("Tenant one's news");

        // Another tenant's key: the campaign is neither listed nor shown, and nothing of it stays on screen.
        await UseKeyAsync(page, two);
        await Expect(page.Locator("#view-message")).ToContainTextAsync("No campaign");
        await Expect(page.Locator("#view-subject")).ToHaveTextAsync("…");
        await Expect(page.Locator("#count-pending")).ToHaveTextAsync("0");
        await Expect(page.Locator("#recent-list")).Not.ToContainTextAsync("Tenant one's news");
        await Expect(page.Locator("#pause")).ToBeDisabledAsync();

        // An admin key sees it again, and may steer it from the page.
        await UseKeyAsync(page, admin);
        await Expect(page.Locator("#view-subject")).ToHaveTextAsync("Tenant one's news");
        await Expect(page.Locator("#recent-list")).ToContainTextAsync("Tenant one's news");
        await Expect(page.Locator("#count-pending")).ToHaveTextAsync("3");
        await page.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("paused");
    }

    /// <summary>Types a key in the page's API key field, which appears once a call is refused for the want of one.</summary>
    private static async Task UseKeyAsync(IPage page, string key)
    {
        await Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByLabel("API key").DispatchEventAsync("change");
    }

    [Fact]
    public async Task AFormTheServerRefuses_ShowsTheServersErrorNextToTheField()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync(system.FrontAddress.ToString());

        // Only the server can tell that this template does not parse.
        await FillAsync(page, "a@example.org", subject: "Hello {{ name ");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await Expect(page.Locator("#subject-error")).ToContainTextAsync("does not parse");
        await Expect(page.GetByLabel("Subject")).ToHaveAttributeAsync("aria-invalid", "true");
        Assert.Equal(0u, await system.WorkQueueDepthAsync());

        // And what the page can check, it checks before sending.
        await FillAsync(page, "a@example.org\nnot-an-address");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#recipients-error")).ToContainTextAsync("Recipient 2: 'not-an-address'");
    }

    [Fact]
    public async Task ASlowCampaign_CanBePausedAndResumedFromThePage()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(40);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync(system.FrontAddress.ToString());

        await FillAsync(page, Csv(300));
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("sending", new() { Timeout = 15_000 });

        await page.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("paused");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Resume" })).ToBeEnabledAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var settled = smtp.Mails.Count;
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(settled, smtp.Mails.Count);
        Assert.True(settled < 300, "the campaign finished before it could be paused");

        await page.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();
        await Expect(page.Locator("#progress-text")).ToHaveTextAsync("100 %", new() { Timeout = 60_000 });
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("completed");
        output.WriteLine($"paused with {settled} of 300 sent");
        Assert.Equal(300, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(300, smtp.Mails.Count);
    }

    [Fact]
    public async Task ACampaignTheRelayHolds_ShowsTheRelaysReply_AndResumeFromThePageLetsItGoOn()
    {
        // Relays often quote the sender in angle brackets: parsed as HTML, that part of the reply would vanish.
        const string reply = "550 5.7.1 <news@example.com> sender rejected";
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(5)); // no Worker yet: it stays queued
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync($"{system.FrontAddress}#{id}");
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("queued");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Resume" })).ToBeDisabledAsync();
        await Expect(page.Locator("#held-notice")).ToBeHiddenAsync();

        // What a Worker writes when the relay refuses the campaign's sender.
        var held = new OutcomeEvent(OutcomeType.Held, id, DateTimeOffset.UtcNow, Total: 5, Reason: reply);
        await broker.PublishAsync(system.Topology.OutcomesStream, JsonSerializer.SerializeToUtf8Bytes(held, BulkJson.Default.OutcomeEvent));

        await Expect(page.Locator("#view-status")).ToHaveTextAsync("held", new() { Timeout = 15_000 });
        await Expect(page.Locator("#held-notice")).ToBeVisibleAsync();
        await Expect(page.Locator("#held-notice")).ToContainTextAsync("Held");
        await Expect(page.Locator("#held-text")).ToHaveTextAsync(
            $"The relay refused the sender: {reply}. Fix the relay or sender, then resume.");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Resume" })).ToBeEnabledAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Pause" })).ToBeDisabledAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel" })).ToBeEnabledAsync();
        await Expect(page.Locator("#recent-list .badge")).ToHaveTextAsync("held", new() { Timeout = 15_000 });
        var screenshot = Path.Combine(Repository.Root, ".run", "artifacts", "held-campaign.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        output.WriteLine($"screenshot: {screenshot}");

        await page.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("queued");
        await Expect(page.Locator("#held-notice")).ToBeHiddenAsync();
        var resumed = await system.StatusAsync(id);
        Assert.Equal(CampaignLedger.Statuses.Queued, resumed.Status);
        Assert.Null(resumed.HeldReason);
        Assert.Empty(smtp.Mails);

        // Resume really lets it go on: a Worker started now sends every recipient.
        await system.StartWorkerAsync(smtp);
        await Expect(page.Locator("#progress-text")).ToHaveTextAsync("100 %", new() { Timeout = 30_000 });
        await Expect(page.Locator("#view-status")).ToHaveTextAsync("completed");
        var done = await system.StatusAsync(id);
        Assert.Equal(5, done.Delivered);
        Assert.Equal(5, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
    }
    [Fact]
    public async Task ACampaignSentFromThePage_IsShownByItsSubjectAndSender_AndItsDeliveryRateIsChartedAsItGoes()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(40);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var page = await browser.Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1100, Height = 1200 } });
        await page.GotoAsync(system.FrontAddress.ToString());

        await FillAsync(page, Csv(300), subject: "Spring news for {{ name }}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await Expect(page.Locator("#view-subject")).ToHaveTextAsync("Spring news for {{ name }}");
        await Expect(page.Locator("#view-from")).ToHaveTextAsync("News <news@example.com>");
        var listed = page.Locator("#recent-list li").Filter(new() { HasText = "Spring news for {{ name }}" });
        await Expect(listed).ToHaveCountAsync(1);
        await Expect(listed).ToContainTextAsync("News <news@example.com>");
        await Expect(listed).ToContainTextAsync("300 recipients");

        // One sample a second while mails go out: the line gains points, and its label gives a rate above zero.
        var chart = page.Locator("#rate-chart");
        await Expect(chart).ToHaveAttributeAsync("data-samples", new Regex("^[2-9]$|^[1-9][0-9]+$"), new() { Timeout = 15_000 });
        var points = await PointsAsync(page);
        Assert.True(points >= 2, $"{points} points after 2 samples");
        await Poll.UntilAsync(async () => await PointsAsync(page) > points, TimeSpan.FromSeconds(15));
        await Expect(chart).ToHaveAttributeAsync("aria-label", new Regex(@"peak (0\.[1-9]|[1-9][0-9.]*) mails/s"));
        await Expect(page.Locator("#rate-chart-title")).ToHaveTextAsync(new Regex("^Delivery rate: .* mails/s now"));

        await Expect(page.Locator("#progress-text")).ToHaveTextAsync("100 %", new() { Timeout = 60_000 });
        var label = await chart.GetAttributeAsync("aria-label");
        output.WriteLine($"{await PointsAsync(page)} points; {label}");
        var screenshot = Path.Combine(Repository.Root, ".run", "artifacts", "campaign-rate-chart.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        output.WriteLine($"screenshot: {screenshot}");
    }

    private static Task<int> PointsAsync(IPage page) =>
        page.EvaluateAsync<int>("() => document.getElementById('rate-line').getAttribute('points').trim().split(/\\s+/).filter(p => p !== '').length");

    [Fact]
    public async Task AHostileSubject_IsShownAsText_LiveAndInTheList_AndNothingOfItRuns()
    {
        const string hostile = "<img src=x onerror=alert(1)>";
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var page = await browser.Browser.NewPageAsync();
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        await page.GotoAsync(system.FrontAddress.ToString());

        await FillAsync(page, "a@example.org\nb@example.org", subject: hostile);
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await Expect(page.Locator("#view-subject")).ToHaveTextAsync(hostile);
        await Expect(page.Locator("#recent-list li").First).ToContainTextAsync(hostile);
        // Parsed as HTML, the subject would be an element at once, and its onerror would open a dialog.
        Assert.Equal(0, await page.Locator("img").CountAsync());
        Assert.Equal(0, await page.Locator("#campaign-view *[onerror], #recent-list *[onerror]").CountAsync());
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task ThePage_LinksToTheApiReference()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var page = await browser.Browser.NewPageAsync();
        await page.GotoAsync(system.FrontAddress.ToString());

        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "API reference" })).ToHaveAttributeAsync("href", "/docs");
    }
}
