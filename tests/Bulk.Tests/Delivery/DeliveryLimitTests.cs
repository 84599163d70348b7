using System.Text;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>A job that comes back unacknowledged again and again (a Worker killed while it works on it, restarted, killed
/// again) ends with its recipients recorded as dead-lettered failures, whoever stops it: the Worker near the work queue's
/// delivery limit, or the broker at it.</summary>
/// <remarks>
/// The crash loop is played by the test: it takes the job off the work queue without acknowledging it and closes its
/// channel, which returns the job exactly as a killed Worker's connection does, and costs it one delivery.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class DeliveryLimitTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Recipients = 5;

    [Fact]
    public async Task AJobTheBrokerDeadLettersAtItsDeliveryLimit_IsRecordedFailedAsDeadLettered_AndAReplaySendsIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));

        var counts = await ReturnUnacknowledgedAsync(system.Topology.WorkQueue, times: 40);
        output.WriteLine($"x-delivery-count seen on the way: {string.Join(", ", counts)}");
        Assert.True(counts.Count < 40, "the broker never took the job off the work queue");
        Assert.Equal(0u, await system.WorkQueueDepthAsync());

        await system.StartWorkerAsync(smtp);
        var parked = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 0, Recipients), (parked.Status, parked.Delivered, parked.Failed));
        Assert.Empty(smtp.Mails);
        await AssertFailedAsDeadLetteredAsync(system, id, "delivery limit");

        await ReplaySendsEveryRecipientAsync(system, smtp, id);
    }

    [Fact]
    public async Task AJobNearItsDeliveryLimit_IsParkedByTheWorkerBeforeTheBrokerActs_WithItsRecipientsRecordedAndNothingSent()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));

        // Returned until the next delivery is the first the Worker must not work on: it may be what kills Workers.
        var counts = await ReturnUnacknowledgedAsync(system.Topology.WorkQueue, times: Topology.WorkDeliveryLimit - Topology.WorkDeliveryMargin);
        output.WriteLine($"x-delivery-count seen on the way: {string.Join(", ", counts)}");
        Assert.Equal(Topology.WorkDeliveryLimit - Topology.WorkDeliveryMargin - 1, counts[^1]);
        // The broker returns it once the channel is closed, a moment later.
        await Poll.UntilAsync(async () => await system.WorkQueueDepthAsync() == 1, TimeSpan.FromSeconds(10));

        await system.StartWorkerAsync(smtp);
        var parked = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 0, Recipients), (parked.Status, parked.Delivered, parked.Failed));
        Assert.Empty(smtp.Mails);
        await AssertFailedAsDeadLetteredAsync(system, id, "without being acknowledged");

        await ReplaySendsEveryRecipientAsync(system, smtp, id);
    }

    /// <summary>Each recipient is failed as dead-lettered with a reply that says why, and the job is in the parking lot
    /// with that reason.</summary>
    private async Task AssertFailedAsDeadLetteredAsync(BulkSystem system, string id, string why)
    {
        var failures = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures");
        Assert.Equal(Recipients, failures.GetArrayLength());
        foreach (var failure in failures.EnumerateArray())
        {
            Assert.True(failure.GetProperty("deadLettered").GetBoolean());
            Assert.Contains(why, failure.GetProperty("reply").GetString());
        }

        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.DeadQueue) == 1, TimeSpan.FromSeconds(10));
        var dead = (await broker.GetAsync(system.Topology.DeadQueue))!;
        Assert.Contains(why, Encoding.UTF8.GetString((byte[])dead.BasicProperties.Headers![AmqpHeaders.DeadReason]!));
        Assert.Equal(Recipients, JsonSerializer.Deserialize(dead.Body.Span, BulkJson.Default.DeliveryJob)!.Recipients.Count);
        await broker.PublishAsync(system.Topology.DeadQueue, dead.Body.ToArray());
    }

    private static async Task ReplaySendsEveryRecipientAsync(BulkSystem system, TestSmtpServer smtp, string id)
    {
        using var replay = await system.Http.PostAsync("/dead-letters/replay", null);
        replay.EnsureSuccessStatusCode();
        var done = await system.WaitForStatusAsync(id, s => s.Status == CampaignLedger.Statuses.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal((Recipients, 0), (done.Delivered, done.Failed));
        Assert.Equal(Recipients, smtp.Mails.Select(m => m.Recipient).Distinct().Count());
        Assert.Equal(Recipients, smtp.Mails.Count);
    }

    /// <summary>Takes the job at the head of <paramref name="queue"/> and closes the channel without acknowledging it, as
    /// a Worker that dies does, up to <paramref name="times"/> times or until the queue is empty.</summary>
    /// <returns>The <c>x-delivery-count</c> of each delivery taken (0 for one without it).</returns>
    private async Task<List<long>> ReturnUnacknowledgedAsync(string queue, int times)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        var counts = new List<long>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (counts.Count < times && DateTime.UtcNow < deadline)
        {
            await using var channel = await connection.CreateChannelAsync();
            var taken = await channel.BasicGetAsync(queue, autoAck: false);
            if (taken is null)
            {
                // The broker may still be returning the last one: look again once before calling the queue empty.
                await Task.Delay(200);
                if (await broker.MessageCountAsync(queue) == 0)
                {
                    break;
                }

                continue;
            }

            counts.Add(taken.BasicProperties.Headers?.TryGetValue("x-delivery-count", out var count) is true ? Convert.ToInt64(count) : 0);
            await channel.CloseAsync();
        }

        return counts;
    }
}
