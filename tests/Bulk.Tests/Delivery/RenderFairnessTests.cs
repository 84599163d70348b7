using System.Text.Json.Nodes;
using System.Diagnostics;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>A campaign whose recipients each take a rendering's whole time budget shares a Worker's rendering with other
/// campaigns: a one-recipient campaign posted after four such campaigns is delivered while all four are still sending.</summary>
[Collection(BrokerCollection.Name)]
public sealed class RenderFairnessTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int SlowCampaigns = 4;

    private const int SlowRecipients = 20;

    /// <summary>Renderings run out of time fast (and again, once more), and steps never stop them first.</summary>
    private static readonly string[] WorkerSettings =
    [
        "--Templates:MaxRenderMilliseconds=200", "--Templates:MaxSteps=100000000", "--Delivery:RenderSliceMilliseconds=1000",
    ];

    /// <summary>Endless for a recipient whose <c>slow</c> is true: a billion loop steps. The Front renders the first
    /// recipient only, for whom it is quick, so the campaign is accepted.</summary>
    private const string Slow = "{% if slow %}{% for i in (1..100000) %}{% for j in (1..10000) %}{% endfor %}{% endfor %}{% endif %}Hello";

    [Fact]
    public async Task AOneRecipientCampaign_IsDeliveredWhileFourCampaignsOfSlowRecipientsPostedBeforeItAreStillSending()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker, "--Front:CampaignsPerMinute=0");
        await system.StartWorkerProcessAsync(sink.Port, WorkerSettings);

        var slow = new List<string>();
        for (var c = 0; c < SlowCampaigns; c++)
        {
            slow.Add(await system.PostAsync(Campaign(Slow, [("first@example.org", false), .. Enumerable.Range(0, SlowRecipients).Select(i => ($"slow{c}-{i}@example.org", true))])));
        }

        var posted = Stopwatch.GetTimestamp();
        var quick = await system.PostAsync(Campaign("Hello {{ email }}", [("quick@example.org", false)]));
        var delivered = await system.WaitForStatusAsync(quick, s => s.Pending == 0, TimeSpan.FromSeconds(180));
        var others = await Task.WhenAll(slow.Select(system.StatusAsync));
        // Reported, not asserted: the issue's figure was 8 s.
        output.WriteLine($"the one-recipient campaign was done {Stopwatch.GetElapsedTime(posted).TotalSeconds:F1} s after it was posted; "
            + $"the slow campaigns had {string.Join(", ", others.Select(s => s.Pending))} recipients pending");

        Assert.Equal(1, delivered.Delivered);
        Assert.All(others, s => Assert.True(s.Pending > 0, $"campaign {s.Id} finished ({s.Failed} failed) before the one-recipient campaign posted after it"));

        // And the slow ones end too: every slow recipient failed for its template, the first of each delivered.
        foreach (var id in slow)
        {
            var done = await system.WaitForStatusAsync(id, s => s.Pending == 0, TimeSpan.FromSeconds(300));
            Assert.Equal((1, SlowRecipients), (done.Delivered, done.Failed));
        }
    }

    private static string Campaign(string text, (string Email, bool Slow)[] recipients) => new JsonObject
    {
        ["from"] = "news@example.com",
        ["subject"] = "Hello",
        ["text"] = text,
        ["recipients"] = new JsonArray([.. recipients.Select(r => (JsonNode)new JsonObject { ["email"] = r.Email, ["data"] = new JsonObject { ["slow"] = r.Slow } })]),
    }.ToJsonString();
}
