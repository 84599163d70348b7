using Bulk.Broker;
using Bulk.Contracts;
using Bulk.Front;
using Bulk.Front.Broker;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// The lock on an <c>Idempotency-Key</c> is an exclusive queue: it dies with its connection (its node died, the network
/// dropped), and another Front may then take the key at once. Its former holder must then be unable to publish, even
/// though it could reconnect (to another node of a cluster): otherwise two Fronts would enqueue the same key.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class IdempotencyKeyLockTests(BrokerFixture broker)
{
    private readonly Topology topology = new($"test-{Guid.NewGuid():N}"[..17]);

    [Fact]
    public async Task ALockLostWithItsConnection_IsFreeForAnotherFront_AndItsFormerHolderCannotPublishUnderIt()
    {
        await using var relay = BrokerRelay.Start(broker.Uri);
        await using var first = Front(relay.Uri);
        await using var second = Front(broker.Uri);

        await using var held = await first.Lock.AcquireAsync("key-1", CancellationToken.None);
        using (var briefly = new CancellationTokenSource(TimeSpan.FromMilliseconds(500)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.Lock.AcquireAsync("key-1", briefly.Token));
        }

        relay.Cut();
        await Poll.UntilAsync(() => Task.FromResult(!held.Held), TimeSpan.FromSeconds(10));
        relay.Restore();

        // The broker dropped the lock with the connection: the other Front takes the key.
        using (var soon = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await using var taken = await second.Lock.AcquireAsync("key-1", soon.Token);
            Assert.True(taken.Held);
        }

        // The former holder, whose broker is reachable again, may not publish under the lost lock...
        var job = Job();
        await Assert.ThrowsAsync<NotPublishedException>(() => first.Publisher.PublishAsync(job, JobMessages.Serialize(job), held.Connection));
        Assert.Equal(0u, await broker.MessageCountAsync(topology.WorkQueue));

        // ...though without a key the same publisher reconnects and publishes: it was the fence that refused.
        await first.Publisher.PublishAsync(job, JobMessages.Serialize(job));
        Assert.Equal(1u, await broker.MessageCountAsync(topology.WorkQueue));
        await broker.DeleteQueuesAsync(topology.WorkQueue, topology.DeadQueue);
    }

    private DeliveryJob Job() => new(DeliveryJob.CurrentVersion, Guid.NewGuid().ToString("N"),
        new MessageTemplate("news@example.com", "Hi", "Hello", null), [new JobRecipient(0, "someone@example.org")], Total: 1);

    private FrontParts Front(string uri)
    {
        var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = uri, Prefix = topology.Prefix }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        var connection = new BrokerConnection(connections, NullLogger<BrokerConnection>.Instance);
        return new FrontParts(connections, new IdempotencyKeyLock(connection, NullLogger<IdempotencyKeyLock>.Instance),
            new CampaignPublisher(connection, Options.Create(new FrontOptions()), NullLogger<CampaignPublisher>.Instance));
    }

    private sealed record FrontParts(BrokerConnections Connections, IdempotencyKeyLock Lock, CampaignPublisher Publisher) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Connections.DisposeAsync();
    }
}
