using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Telemetry;

/// <summary>Per-request log lines are off by default, even with everything else at Information, and one setting turns them on.</summary>
[Collection(BrokerCollection.Name)]
public sealed class RequestLogTests(BrokerFixture broker)
{
    private const string RequestLogs = "Microsoft.AspNetCore.Hosting.Diagnostics";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RequestLogs_AreOffAtInformation_UnlessTheirCategoryIsTurnedOn(bool turnedOn)
    {
        await using var system = BulkSystem.On(broker.Uri, broker);
        var front = await system.StartFrontProcessAsync(["--Logging:LogLevel:Default=Information", "--Logging:Console:FormatterName=json",
            .. turnedOn ? [$"--Logging:LogLevel:{RequestLogs}=Information"] : Array.Empty<string>()]);

        using var response = await system.Http.GetAsync("/campaigns/0123456789abcdef0123456789abcdef");
        // The Front logs at Information already (it said where it listens): a request line would have come with it.
        await Poll.UntilAsync(() => front.Output.Contains("Application started", StringComparison.Ordinal), TimeSpan.FromSeconds(10));

        if (turnedOn)
        {
            await front.WaitForOutputAsync("\"Category\":\"" + RequestLogs + "\"", TimeSpan.FromSeconds(10));
            Assert.Contains("/campaigns/0123456789abcdef0123456789abcdef", front.Output, StringComparison.Ordinal);
        }
        else
        {
            // A second request, answered: whatever the first one logged is written by now.
            using var second = await system.Http.GetAsync("/healthz");
            Assert.DoesNotContain(RequestLogs, front.Output, StringComparison.Ordinal);
        }
    }
}

/// <summary>Who paused, resumed or cancelled a campaign shows in the log: one line each, at Information.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ControlLogTests(BrokerFixture broker)
{
    [Fact]
    public async Task PausingResumingAndCancelling_EachLogOneLine_NamingTheCampaign()
    {
        var logs = new CapturedLogs();
        await using var system = await BulkSystem.StartFrontAsync(broker, logs, "--Logging:LogLevel:Bulk.Front.Campaigns.CampaignControlApi=Information");
        // No Worker: the campaign stays queued while it is paused, resumed and cancelled.
        var id = await system.PostAsync(SampleCampaigns.Personal(3));
        var mark = logs.Mark();

        foreach (var action in new[] { "pause", "resume", "cancel" })
        {
            using var response = await system.Http.PostAsync($"/campaigns/{id}/{action}", null);
            Assert.True(response.IsSuccessStatusCode, $"{action}: {(int)response.StatusCode}");
        }

        var lines = logs.Since(mark).Where(e => e.Category == "Bulk.Front.Campaigns.CampaignControlApi").Select(e => e.Message).ToList();
        Assert.Equal([$"Campaign {id} paused on request", $"Campaign {id} resumed on request", $"Campaign {id} cancelled on request"],
            lines.Select(l => l[..l.IndexOf(", trace ", StringComparison.Ordinal)]));
        Assert.All(lines, l => Assert.Matches(", trace [0-9a-f]{32}$", l));
    }
}
