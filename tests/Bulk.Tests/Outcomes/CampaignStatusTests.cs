using System.Net;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Delivery;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Outcomes;

/// <summary>The Front answers a campaign's status from the outcomes stream.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CampaignStatusTests(BrokerFixture broker)
{
    [Fact]
    public async Task ACampaignsStatus_CountsDeliveredAndFailed_AndListsTheFailuresWithTheirReplies()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address.StartsWith("user0000", StringComparison.Ordinal) ? (550, "5.1.1 no such user") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(120));
        var queued = await system.StatusAsync(id);
        Assert.Equal(120, queued.Total);
        Assert.NotNull(queued.CreatedAt);

        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        Assert.Equal(CampaignLedger.Statuses.CompletedWithFailures, done.Status);
        Assert.Equal((110, 10, 0, 0), (done.Delivered, done.Failed, done.Pending, done.Deferred));
        Assert.NotNull(done.FirstDeliveryAt);
        Assert.True(done.RatePerSecond > 0);

        var page = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures?offset=2&limit=3")).RootElement;
        Assert.Equal(10, page.GetProperty("count").GetInt32());
        var failures = page.GetProperty("failures").EnumerateArray().ToList();
        Assert.Equal([2, 3, 4], failures.Select(f => f.GetProperty("index").GetInt32()));
        Assert.All(failures, f => Assert.StartsWith("550", f.GetProperty("reply").GetString()));
        Assert.Equal(SampleCampaigns.Address(2), failures[0].GetProperty("email").GetString());

        var list = JsonDocument.Parse(await system.Http.GetStringAsync("/campaigns")).RootElement.GetProperty("campaigns");
        Assert.Contains(list.EnumerateArray(), c => c.GetProperty("id").GetString() == id);
    }

    [Fact]
    public async Task AnUnknownCampaign_IsA404Problem_AndABadPageIsA400()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        var unknown = await system.Http.GetAsync("/campaigns/nope");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await system.Http.GetAsync("/campaigns/nope/failures")).StatusCode);

        var id = await system.PostAsync(SampleCampaigns.Personal(1));
        var bad = await system.Http.GetAsync($"/campaigns/{id}/failures?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("limit", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task EntriesTheLedgerCannotApply_AreSkipped_AndTheTailGoesOnWithTheRest()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));

        // Well-formed JSON that the fold cannot take (a failure that is null): more than the tail's prefetch of them.
        var poison = System.Text.Encoding.UTF8.GetBytes("""{"type":"progress","campaignId":"poison","at":"2026-11-25T12:00:00+00:00","total":3,"failed":[null]}""");
        for (var i = 0; i < 600; i++)
        {
            await broker.PublishAsync(system.Topology.OutcomesStream, poison);
        }

        var after = new OutcomeEvent(OutcomeType.Accepted, "after-the-poison", DateTimeOffset.UtcNow, 2);
        await broker.PublishAsync(system.Topology.OutcomesStream, JsonSerializer.SerializeToUtf8Bytes(after, BulkJson.Default.OutcomeEvent));

        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/campaigns/after-the-poison")).StatusCode == HttpStatusCode.OK,
            TimeSpan.FromSeconds(15));
        var status = await system.StatusAsync("after-the-poison");
        Assert.Equal((CampaignLedger.Statuses.Queued, 2), (status.Status, status.Total));
    }
}
