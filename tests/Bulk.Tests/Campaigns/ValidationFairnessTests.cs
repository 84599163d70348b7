using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>One key's campaigns whose templates take the trial rendering's whole time budget do not hold up another
/// key's campaign at a real Front: it is answered before most of theirs, not after all of them.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ValidationFairnessTests(BrokerFixture broker)
{
    private const string KeyA = "key-a-0123456789abcdef";
    private const string KeyB = "key-b-0123456789abcdef";
    private const int SlowPosts = 40;

    /// <summary>A billion loop steps for the first recipient: the trial rendering runs out of time, twice, and the campaign is refused.</summary>
    private const string Slow = "{% for i in (1..100000) %}{% for j in (1..10000) %}{% endfor %}{% endfor %}Hello";

    [Fact]
    public async Task AKeysCampaign_IsAnsweredBeforeMostOfAnotherKeysSlowCampaigns_NotAfterAllOfThem()
    {
        await using var system = BulkSystem.On(broker.Uri, broker);
        await system.StartFrontProcessAsync($"--Front:ApiKeys:0={KeyA}", $"--Front:ApiKeys:1={KeyB}", "--Front:CampaignsPerMinute=0",
            // The per-key cap on POSTs under way would answer most of A's 429 before they render: the turns are what is shown here.
            "--Front:MaxPostsInFlightPerKey=0", "--Templates:MaxRenderMilliseconds=200", "--Templates:MaxSteps=100000000");
        using var client = new HttpClient { BaseAddress = system.FrontAddress, Timeout = TimeSpan.FromSeconds(120) };
        var answered = new List<string>();

        var slow = Enumerable.Range(0, SlowPosts).Select(_ => PostAsync(client, KeyA, Slow, "slow", answered)).ToList();
        var quick = PostAsync(client, KeyB, "Hello {{ email }}", "quick", answered);
        var answers = await Task.WhenAll([.. slow, quick]);

        Assert.All(answers[..SlowPosts], a => Assert.Equal(HttpStatusCode.BadRequest, a));
        Assert.Equal(HttpStatusCode.Accepted, answers[^1]);
        // Without turns all 40 are answered first. Half is the bound: on a loaded 2-core machine the 40 connections'
        // own start-up lets a dozen of A's in before B's request is even read (12 seen in a full run).
        var before = answered.IndexOf("quick");
        Assert.True(before < SlowPosts / 2, $"{before} of key A's {SlowPosts} slow campaigns were answered before key B's");
    }

    private static async Task<HttpStatusCode> PostAsync(HttpClient client, string key, string text, string label, List<string> answered)
    {
        var campaign = new JsonObject
        {
            ["from"] = "news@example.com",
            ["subject"] = "Hello",
            ["text"] = text,
            ["recipients"] = new JsonArray("a@example.org"),
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = new StringContent(campaign.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await client.SendAsync(request);
        lock (answered)
        {
            answered.Add(label);
        }

        return response.StatusCode;
    }
}
