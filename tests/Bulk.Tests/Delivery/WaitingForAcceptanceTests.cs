using System.Text.Json;
using Bulk.Broker;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Delivery;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bulk.Tests.Delivery;

/// <summary>
/// A job can reach the paused queue before its campaign's <c>accepted</c> entry reaches the Worker: broker trouble while
/// the Worker writes <c>started</c> or splits the campaign parks it there, a moment after the Front's confirm. It waits
/// only until the entry arrives, not until the mover's half-hourly safeguard pass.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class WaitingForAcceptanceTests(BrokerFixture broker)
{
    private const int Recipients = 3;

    [Fact]
    public async Task AJobWaitingForItsCampaignsAcceptedEntry_GoesToWorkWithinSecondsOfItArriving()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp);
        var mover = worker.Services.GetServices<IHostedService>().OfType<PausedJobs>().Single();
        var (id, acceptance) = (Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"));
        var job = new DeliveryJob(DeliveryJob.CurrentVersion, id, new MessageTemplate("news@example.com", "Hi", "Hello", null),
            [.. Enumerable.Range(0, Recipients).Select(i => new JobRecipient(i, $"r{i}@example.org"))], Total: Recipients, AcceptanceId: acceptance);

        // The paused queue exists once the mover has declared it; the job lands there before anything knows its campaign.
        await Poll.UntilAsync(async () => await QueueExistsAsync(system.Topology.PausedQueue), TimeSpan.FromSeconds(30));
        await broker.PublishAsync(system.Topology.PausedQueue, JobMessages.Serialize(job));
        // The mover has looked at it and left it waiting: an unknown campaign may be one whose history was dropped.
        await Poll.UntilAsync(() => Task.FromResult(mover.Taken >= 1), TimeSpan.FromSeconds(30));
        Assert.Empty(smtp.Mails);

        await broker.PublishAsync(system.Topology.OutcomesStream, JsonSerializer.SerializeToUtf8Bytes(
            new OutcomeEvent(OutcomeType.Accepted, id, DateTimeOffset.UtcNow, Recipients, AcceptanceId: acceptance, Subject: "Hi", From: "news@example.com"),
            BulkJson.Default.OutcomeEvent));

        // A pass every DeliveryConsumer.PauseRecheck (2 s) at most: 15 s is several, and far from FullPassInterval.
        await smtp.WaitForMailsAsync(Recipients, TimeSpan.FromSeconds(15));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(30));
        Assert.Equal((Recipients, Recipients), (done.Total, done.Delivered));
    }

    private async Task<bool> QueueExistsAsync(string queue)
    {
        // MessageCountAsync answers 0 for a queue that does not exist as for an empty one.
        try
        {
            await using var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeclarePassiveAsync(queue);
            return true;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return false;
        }
    }
}
