using System.Net;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>The progress stream the page listens to: Server-Sent Events that end with the campaign and resume after a reconnect.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CampaignEventsTests(BrokerFixture broker)
{
    private sealed record ServerSentEvent(string? Id, string Type, CampaignStatus Status);

    /// <summary>Reads events until the server ends the stream.</summary>
    private static async Task<List<ServerSentEvent>> ReadAllAsync(HttpClient http, string id, string? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/campaigns/{id}/events");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));

        var events = new List<ServerSentEvent>();
        string? eventId = null, type = null, data = null;
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    events.Add(new ServerSentEvent(eventId, type ?? "message", JsonSerializer.Deserialize<CampaignStatus>(data, JsonSerializerOptions.Web)!));
                }

                (eventId, type, data) = (null, null, null);
                continue;
            }

            var (field, value) = line.IndexOf(':') is var colon and > 0 ? (line[..colon], line[(colon + 1)..].TrimStart()) : (line, "");
            switch (field)
            {
                case "id": eventId = value; break;
                case "event": type = value; break;
                case "data": data = value; break;
            }
        }

        return events;
    }

    [Fact]
    public async Task TheStreamReportsProgressAFewTimesASecond_AndEndsWithTheCompletedCampaign()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.AcceptDelay = TimeSpan.FromMilliseconds(10);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var id = await system.PostAsync(SampleCampaigns.Personal(300));

        var started = DateTime.UtcNow;
        var events = await ReadAllAsync(system.Http, id);
        var seconds = (DateTime.UtcNow - started).TotalSeconds;

        var progress = events.Where(e => e.Type == "progress").ToList();
        Assert.True(progress.Count >= 2, $"{progress.Count} progress events");
        Assert.True(progress.Count <= Math.Ceiling(seconds * 4) + 1, $"{progress.Count} events in {seconds:F1} s is more than 4 a second");
        Assert.Equal(progress.Select(e => e.Status.Delivered).Order(), progress.Select(e => e.Status.Delivered));
        Assert.All(progress, e => Assert.Equal(e.Status.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Id));
        var end = events.Last();
        Assert.Equal("end", end.Type);
        Assert.Equal((CampaignLedger.Statuses.Completed, 300, 0), (end.Status.Status, end.Status.Delivered, end.Status.Pending));
    }

    [Fact]
    public async Task ReconnectingWithLastEventId_ContinuesAfterIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(20)); // no Worker yet: the campaign waits

        var queuedVersion = (await system.StatusAsync(id)).Version;
        await system.StartWorkerAsync(smtp);
        var resumed = await ReadAllAsync(system.Http, id, queuedVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.All(resumed, e => Assert.True(long.Parse(e.Id!, System.Globalization.CultureInfo.InvariantCulture) > queuedVersion));
        Assert.Equal("end", resumed.Last().Type);

        // Reconnecting after the end with the last id seen: only the end again, no progress repeated.
        var again = await ReadAllAsync(system.Http, id, resumed.Last().Id);
        Assert.Equal(["end"], again.Select(e => e.Type));
    }

    [Fact]
    public async Task AFrontThatStops_EndsItsOpenStreams_RatherThanWaitForThem()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(3)); // no Worker: it stays queued, its stream stays open
        using var http = new HttpClient { BaseAddress = system.FrontAddress };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var response = await http.GetAsync($"/campaigns/{id}/events", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        while (await reader.ReadLineAsync(timeout.Token) is { } line && line != "event: progress")
        {
        }

        var restart = system.RestartFrontAsync();
        var rest = await reader.ReadToEndAsync(timeout.Token);

        // ASP.NET Core would wait up to 30 s for a request still running; the stream ends as the Front stops instead.
        await restart.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.DoesNotContain("event: end", rest, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheStreamOfAnUnknownCampaign_IsA404Problem()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        var response = await system.Http.GetAsync("/campaigns/nope/events");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
