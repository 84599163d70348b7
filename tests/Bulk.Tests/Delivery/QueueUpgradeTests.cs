using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;

namespace Bulk.Tests.Delivery;

/// <summary>
/// Queues and streams declared by the version before cluster support lack arguments this one declares (replicas,
/// at-least-once dead-lettering), and RabbitMQ refuses a declaration that differs: a stream holding history cannot be
/// declared anew. They are used as they are, with a warning, and campaigns go on being delivered.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class QueueUpgradeTests(BrokerFixture broker)
{
    [Fact]
    public async Task QueuesDeclaredByTheEarlierVersion_AreUsedAsTheyAre_WithAWarning_AndCampaignsAreDelivered()
    {
        using var logs = new CapturedLogs();
        await using var system = BulkSystem.On(broker.Uri, broker, logs);
        await DeclareAsTheEarlierVersionDidAsync(system);
        await system.StartFrontAsync();
        // Posted before any Worker runs, so that the Front is the first to find the work queue (each queue is reported
        // once per process, and the Worker runs in this process too).
        var id = await system.PostAsync(SampleCampaigns.Personal(30));
        await using var smtp = await TestSmtpServer.StartAsync();
        await system.StartWorkerAsync(smtp);

        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        Assert.Equal((CampaignLedger.Statuses.Completed, 30), (done.Status, done.Delivered));
        Assert.Contains(logs.Entries, e => e.Message.Contains($"{system.Topology.WorkQueue} exists with other arguments", StringComparison.Ordinal)
                                           && e.Message.Contains("inequivalent arg", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Message.Contains($"{system.Topology.OutcomesStream} exists with other arguments", StringComparison.Ordinal));
    }

    // The arguments of the earlier version, as it declared them.
    private async Task DeclareAsTheEarlierVersionDidAsync(BulkSystem system)
    {
        var topology = system.Topology;
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.QueueDeclareAsync(topology.DeadQueue, true, false, false, new Dictionary<string, object?> { ["x-queue-type"] = "quorum" });
        await channel.QueueDeclareAsync(topology.WorkQueue, true, false, false, new Dictionary<string, object?>
        {
            ["x-queue-type"] = "quorum", ["x-delivery-limit"] = 20, ["x-dead-letter-exchange"] = "", ["x-dead-letter-routing-key"] = topology.DeadQueue,
        });
        await channel.QueueDeclareAsync(topology.OutcomesStream, true, false, false, new Dictionary<string, object?>
        {
            ["x-queue-type"] = "stream", ["x-max-age"] = "7D", ["x-max-length-bytes"] = 2_000_000_000L, ["x-stream-max-segment-size-bytes"] = 100_000_000,
        });
        await channel.QueueDeclareAsync(topology.SuppressionsStream, true, false, false, new Dictionary<string, object?> { ["x-queue-type"] = "stream" });
    }
}
