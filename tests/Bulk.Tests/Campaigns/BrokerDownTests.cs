using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Bulk.Broker.Suppressions;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>With no broker to take the campaign, the Front refuses it honestly instead of pretending.</summary>
[Collection(BrokerCollection.Name)]
public sealed class BrokerDownTests(BrokerFixture broker)
{
    [Fact]
    public async Task WithTheBrokerUnreachable_PostingIsA503WithRetryAfter_AndReadyzIsUnhealthy()
    {
        // Nothing listens on this port: the Front's broker is "down".
        var port = TestSmtpServer.FreePort();
        await using var system = await BulkSystem.StartFrontOnAsync(broker, $"amqp://guest:guest@127.0.0.1:{port}/");

        var response = await system.Http.PostAsync("/campaigns", new StringContent(
            """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "503 must say when to retry");
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("The broker is unavailable. Nothing was enqueued; retry later.", problem.RootElement.GetProperty("detail").GetString());
        Assert.DoesNotContain($":{port}", problem.RootElement.GetRawText());
        Assert.DoesNotContain("127.0.0.1", problem.RootElement.GetRawText());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await system.Http.GetAsync("/readyz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task WhenTheBrokerGoesAway_Every503SaysOnlyThatItIsUnavailable_WhileTheLogSaysWhere()
    {
        using var logs = new CapturedLogs();
        await using var relay = BrokerRelay.Start(broker.Uri);
        await using var system = await BulkSystem.StartFrontThroughAsync(broker, relay, logs);
        await WaitForReadyzAsync(system, HttpStatusCode.OK);
        var campaign = await system.PostAsync("""{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"]}""");
        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { "b@example.org" } })).StatusCode);
        var unsubscribe = $"/unsubscribe/{UnsubscribeToken.Create(BulkSystem.UnsubscribeSecret, campaign, "c@example.org")}";

        relay.Cut();
        await WaitForReadyzAsync(system, HttpStatusCode.ServiceUnavailable);
        var answers = new Dictionary<string, HttpResponseMessage>
        {
            ["POST /campaigns"] = await system.Http.PostAsync("/campaigns", new StringContent(
                """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"]}""", Encoding.UTF8, "application/json")),
            ["POST /campaigns/{id}/pause"] = await system.Http.PostAsync($"/campaigns/{campaign}/pause", null),
            ["POST /suppressions"] = await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { "d@example.org" } }),
            ["DELETE /suppressions/{email}"] = await system.Http.DeleteAsync("/suppressions/b@example.org"),
            ["GET /dead-letters"] = await system.Http.GetAsync("/dead-letters"),
            ["POST /dead-letters/replay"] = await system.Http.PostAsync("/dead-letters/replay", null),
            ["POST /unsubscribe/{token}"] = await system.Http.PostAsync(unsubscribe, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])),
        };

        var where = $"127.0.0.1:{relay.Port}";
        foreach (var (request, answer) in answers)
        {
            var body = await answer.Content.ReadAsStringAsync();
            Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable, $"{request}: {(int)answer.StatusCode} {body}");
            Assert.DoesNotContain($":{relay.Port}", body);
            Assert.DoesNotContain("127.0.0.1", body);
            if (answer.Content.Headers.ContentType?.MediaType == "application/problem+json")
            {
                using var problem = JsonDocument.Parse(body);
                Assert.StartsWith("The broker is unavailable.", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal("POST /unsubscribe/{token}", request); // a recipient's page, not an API answer
            }
        }

        Assert.Contains(logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning && e.Message.Contains(where, StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithTheBrokerUp_ReadyzIsHealthy()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        // Ready once it reaches the broker and has read the outcomes stream.
        await Poll.UntilAsync(
            async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
    }

    private static Task WaitForReadyzAsync(BulkSystem system, HttpStatusCode status) => Poll.UntilAsync(
        async () => (await system.Http.GetAsync("/readyz")).StatusCode == status, TimeSpan.FromSeconds(15));
}
