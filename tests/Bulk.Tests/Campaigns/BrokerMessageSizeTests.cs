using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// A campaign is one broker message, so the broker's <c>max_message_size</c> (16 MiB by default from RabbitMQ 4.0)
/// is the largest campaign: one above it is refused at 413 naming the setting, with nothing enqueued, against a real
/// node configured like a 4.x broker; one below it is delivered.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class BrokerMessageSizeTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int SixteenMebibytes = 16 * 1024 * 1024;

    private BrokerNode node = null!;

    public async Task InitializeAsync() => node = await BrokerNode.StartAsync($"max_message_size = {SixteenMebibytes}");

    public async Task DisposeAsync() => await node.DisposeAsync();

    [Fact]
    public async Task ACampaignLargerThanTheBrokerTakes_IsA413NamingTheSetting_AndOneJustBelowIsDelivered()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontOnAsync(null, node.Uri, "--Front:CampaignsPerMinute=0");
        await system.StartWorkerOnAsync(sink.Port);

        using var refused = await system.Http.PostAsync("/campaigns", JsonBody.Of(Campaign(1000, dataBytes: 20 * 1024)));
        var problem = await refused.Content.ReadAsStringAsync();
        output.WriteLine(problem);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Contains("RabbitMq__MaxMessageBytes", problem, StringComparison.Ordinal);
        Assert.Equal(SixteenMebibytes, JsonDocument.Parse(problem).RootElement.GetProperty("limit").GetInt32());
        Assert.Equal(0u, await WorkQueueDepthAsync(system));

        var id = await system.PostAsync(Campaign(1000, dataBytes: 14 * 1024));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        Assert.Equal((CampaignLedger.Statuses.Completed, 1000), (done.Status, done.Delivered));
        Assert.Equal(1000, (await sink.WaitForDistinctAsync(1000, TimeSpan.FromSeconds(30))).Distinct().Count());
    }

    [Fact]
    public async Task WhenTheSettingIsAboveTheBrokersLimit_TheBrokersRefusalIsStillA413_NotA503ToRetry()
    {
        await using var system = await BulkSystem.StartFrontOnAsync(null, node.Uri, "--Front:CampaignsPerMinute=0",
            $"--RabbitMq:MaxMessageBytes={4 * SixteenMebibytes}");

        using var refused = await system.Http.PostAsync("/campaigns", JsonBody.Of(Campaign(1000, dataBytes: 20 * 1024)));
        var problem = await refused.Content.ReadAsStringAsync();
        output.WriteLine(problem);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Contains("max_message_size", problem, StringComparison.Ordinal);
        Assert.Contains("RabbitMq__MaxMessageBytes", problem, StringComparison.Ordinal);
        Assert.Equal(0u, await WorkQueueDepthAsync(system));

        // The Front goes on taking campaigns that fit.
        await system.PostAsync(SampleCampaigns.Personal(3));
    }

    /// <summary><paramref name="recipients"/> recipients, each carrying <paramref name="dataBytes"/> of data.</summary>
    private static string Campaign(int recipients, int dataBytes)
    {
        var filler = new string('x', dataBytes);
        var list = new JsonArray();
        for (var i = 0; i < recipients; i++)
        {
            list.Add(new JsonObject { ["email"] = SampleCampaigns.Address(i), ["data"] = new JsonObject { ["notes"] = filler } });
        }

        return new JsonObject
        {
            ["from"] = "News <news@example.com>",
            ["subject"] = "Hello",
            ["text"] = "Hi {{ notes | size }}",
            ["recipients"] = list,
        }.ToJsonString();
    }

    /// <summary>The work queue's depth; 0 when no one has declared it yet (the Worker declares it as it starts): nothing is on it.</summary>
    private async Task<uint> WorkQueueDepthAsync(BulkSystem system)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(node.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(system.Topology.WorkQueue)).MessageCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return 0;
        }
    }
}
