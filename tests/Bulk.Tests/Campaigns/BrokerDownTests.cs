using System.Net;
using System.Text;
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
        var dead = $"amqp://guest:guest@127.0.0.1:{TestSmtpServer.FreePort()}/";
        await using var system = await BulkSystem.StartFrontOnAsync(broker, dead);

        var response = await system.Http.PostAsync("/campaigns", new StringContent(
            """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "503 must say when to retry");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await system.Http.GetAsync("/readyz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task WithTheBrokerUp_ReadyzIsHealthy()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        // Ready once it reaches the broker and has read the outcomes stream.
        await Bulk.Tests.Delivery.EndToEndTests.WaitUntilAsync(
            async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
    }
}
