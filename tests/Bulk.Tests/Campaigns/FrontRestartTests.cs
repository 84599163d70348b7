using System.Net;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>A Front keeps nothing that the outcomes stream does not: a new one knows what the old one knew.</summary>
[Collection(BrokerCollection.Name)]
public sealed class FrontRestartTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task AFrontRestartedMidCampaign_ReportsTheSameCountsAndThenTheProgress()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerProcessAsync(sink.Port);

        var id = await system.PostAsync(SampleCampaigns.Personal(4000));
        await sink.WaitForDistinctAsync(800, TimeSpan.FromSeconds(60));
        var before = await system.StatusAsync(id);

        await system.RestartFrontAsync();
        var after = await system.StatusAsync(id);

        output.WriteLine($"before the restart: {before.Delivered} delivered; right after: {after.Delivered}");
        Assert.Equal((before.Id, before.Total, before.CreatedAt, before.FirstDeliveryAt), (after.Id, after.Total, after.CreatedAt, after.FirstDeliveryAt));
        Assert.True(after.Delivered >= before.Delivered, $"{after.Delivered} < {before.Delivered}");
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        Assert.Equal((4000, 0), (done.Delivered, done.Failed));
    }

    [Fact]
    public async Task TheSamePostTwiceAtOnce_AndAgainAfterARestart_IsOneCampaignWithOneMailPerRecipient()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var body = SampleCampaigns.Personal(30);
        var key = $"order-{Guid.NewGuid():N}";

        var ids = await Task.WhenAll(system.PostAsync(body, key), system.PostAsync(body, key));
        Assert.Equal(ids[0], ids[1]);
        await smtp.WaitForMailsAsync(30, TimeSpan.FromSeconds(60));

        await system.RestartFrontAsync();
        Assert.Equal(ids[0], await system.PostAsync(body, key));

        var reused = await system.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/campaigns")
        {
            Content = JsonBody.Of(SampleCampaigns.Personal(31)),
            Headers = { { "Idempotency-Key", key } },
        });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, reused.StatusCode);
        Assert.Equal("application/problem+json", reused.Content.Headers.ContentType?.MediaType);

        await Task.Delay(1000);
        Assert.Equal(30, smtp.Mails.Count);
        Assert.Equal(30, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }
}
