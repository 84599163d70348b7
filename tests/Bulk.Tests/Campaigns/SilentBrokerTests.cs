using System.Diagnostics;
using System.Net;
using Bulk.Broker;
using Bulk.Contracts;
using Bulk.Front;
using Bulk.Front.Broker;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// A broker that stops answering without closing anything (SIGSTOP of its VM here; a hung node or a network partition
/// in production) costs a client its own time bound, not RabbitMQ.Client's defaults one after another, and one
/// request stuck on it fails no other.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class SilentBrokerTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int PublishTimeoutSeconds = 5;

    [Fact]
    public async Task WithTheBrokerSilent_AKeyedAndAnUnkeyedPostAnswer503WithinThePublishTimeout_AndEnqueueNothing()
    {
        await using var node = await BrokerNode.StartAsync();
        // Heartbeats of 3 s: the first round below ends before they close the connection (after about three missed),
        // the second begins after.
        await using var system = await BulkSystem.StartFrontOnAsync(broker, node.Uri,
            $"--Front:PublishTimeoutSeconds={PublishTimeoutSeconds}", "--RabbitMq:HeartbeatSeconds=3");
        // Every path of a POST used once while the broker answers: the connection, the queues, a key's lock.
        await system.PostAsync(SampleCampaigns.Personal(1), "warm-up");

        await node.PauseAsync();
        // On the connection that was open when the broker fell silent, then on a new one to open.
        foreach (var round in (string[])["on the open connection", "once heartbeats closed it"])
        {
            if (round != "on the open connection")
            {
                await Task.Delay(TimeSpan.FromSeconds(10));
            }

            var keyed = TimedPostAsync(system, "silent-key");
            var unkeyed = TimedPostAsync(system, null);
            var (keyedStatus, keyedTime) = await keyed;
            var (unkeyedStatus, unkeyedTime) = await unkeyed;
            output.WriteLine($"Front__PublishTimeoutSeconds={PublishTimeoutSeconds}, broker SIGSTOPped, {round}: keyed POST answered " +
                $"{(int)keyedStatus} after {keyedTime.TotalSeconds:F1} s, unkeyed {(int)unkeyedStatus} after {unkeyedTime.TotalSeconds:F1} s");
            Assert.Equal((HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable), (keyedStatus, unkeyedStatus));
            // Generous: what it must not be is RabbitMQ.Client's 20 s for an answer, its 10 s for a handshake, or two of them.
            Assert.True(keyedTime < TimeSpan.FromSeconds(PublishTimeoutSeconds + 4), $"keyed POST took {keyedTime} {round}");
            Assert.True(unkeyedTime < TimeSpan.FromSeconds(PublishTimeoutSeconds + 4), $"unkeyed POST took {unkeyedTime} {round}");
        }

        await node.ResumeAsync();

        // The broker answers again and catches up with what the Front sent meanwhile: the key's lock, declared by the
        // request that gave up, must not stay with the Front's connection, and the retry is the only campaign added.
        var retried = Stopwatch.StartNew();
        await Poll.UntilAsync(async () => (await TimedPostAsync(system, "silent-key")).Status == HttpStatusCode.Accepted, TimeSpan.FromSeconds(20));
        output.WriteLine($"the keyed retry was accepted {retried.Elapsed.TotalSeconds:F1} s after the broker answered again");
        Assert.Equal(2u, await MessageCountAsync(node.Uri, system.Topology.WorkQueue));
    }

    [Fact]
    public async Task AKeyLockWhoseReleaseTheBrokerDoesNotAnswer_FailsNoOtherRequestOnTheSharedConnection()
    {
        await using var node = await BrokerNode.StartAsync();
        var topology = new Topology($"test-{Guid.NewGuid():N}"[..17]);
        await using var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = node.Uri, Prefix = topology.Prefix }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        var connection = new BrokerConnection(connections, NullLogger<BrokerConnection>.Instance);
        var keyLock = new IdempotencyKeyLock(connection, NullLogger<IdempotencyKeyLock>.Instance);
        var publisher = new CampaignPublisher(connection, Options.Create(new FrontOptions { PublishTimeoutSeconds = 60 }),
            NullLogger<CampaignPublisher>.Instance);
        var job = new DeliveryJob(DeliveryJob.CurrentVersion, Guid.NewGuid().ToString("N"),
            new MessageTemplate("news@example.com", "Hi", "Hello", null), [new JobRecipient(0, "someone@example.org")], Total: 1);

        var lease = await keyLock.AcquireAsync("stuck", CancellationToken.None);
        var shared = lease.Connection;
        await node.PauseAsync();
        // Another request on the same connection, waiting for the broker within its own (longer) time.
        var other = publisher.PublishAsync(job, JobMessages.Serialize(job));
        var releasing = Stopwatch.StartNew();
        await lease.DisposeAsync();
        var released = releasing.Elapsed;
        // Silent for longer than a release used to wait (5 s) before it closed the connection under everyone.
        await Task.Delay(TimeSpan.FromSeconds(7));
        await node.ResumeAsync();

        output.WriteLine($"the release gave up after {released.TotalSeconds:F1} s");
        await other;
        Assert.True(shared.IsOpen, "the shared publish connection was closed under the other request");
        Assert.Equal(1u, await MessageCountAsync(node.Uri, topology.WorkQueue));
        // The delete the broker did not answer in time is answered now: the key is free again.
        using var soon = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var again = await keyLock.AcquireAsync("stuck", soon.Token);
        Assert.True(again.Held);
    }

    [Fact]
    public async Task AConnectionToASilentBroker_IsGivenUpAfterAFewMissedHeartbeats()
    {
        await using var node = await BrokerNode.StartAsync();
        await using var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = node.Uri, HeartbeatSeconds = 1 }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        var connection = await connections.GetAsync(ConnectionRole.Publish, CancellationToken.None);
        Assert.Equal(TimeSpan.FromSeconds(1), connection.Heartbeat);

        await node.PauseAsync();
        var silent = Stopwatch.StartNew();
        // Without heartbeats (the client's default is 60 s) the connection would look open for minutes.
        await Poll.UntilAsync(() => !connection.IsOpen, TimeSpan.FromSeconds(15));
        output.WriteLine($"HeartbeatSeconds=1: the connection to the silent broker closed after {silent.Elapsed.TotalSeconds:F1} s");
        await node.ResumeAsync();

        // The next use opens a new connection.
        Assert.True((await connections.GetAsync(ConnectionRole.Publish, CancellationToken.None)).IsOpen);
    }

    [Fact]
    public async Task AnExclusiveLockTriedOnASilentBroker_GivesUpAtItsToken_AndIsHeldOnceTheBrokerAnswers()
    {
        await using var node = await BrokerNode.StartAsync();
        await using var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = node.Uri }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        await using var exclusive = new ExclusiveLock(connections, ConnectionRole.Publish, $"silent-{Guid.NewGuid():N}");
        await connections.GetAsync(ConnectionRole.Publish, CancellationToken.None);

        await node.PauseAsync();
        var trying = Stopwatch.StartNew();
        using (var briefly = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => exclusive.HoldAsync(briefly.Token));
        }

        var gaveUp = trying.Elapsed;
        await node.ResumeAsync();

        output.WriteLine($"a lock tried with a 2 s token on a silent broker gave up after {gaveUp.TotalSeconds:F1} s");
        Assert.True(gaveUp < TimeSpan.FromSeconds(10), $"gave up after {gaveUp}, not at its token");
        Assert.True(await exclusive.HoldAsync(CancellationToken.None));
    }

    private static async Task<(HttpStatusCode Status, TimeSpan Time)> TimedPostAsync(BulkSystem system, string? key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = JsonBody.Of(SampleCampaigns.Personal(1)) };
        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }

        var started = Stopwatch.StartNew();
        using var response = await system.Http.SendAsync(request);
        return (response.StatusCode, started.Elapsed);
    }

    private static async Task<uint> MessageCountAsync(string uri, string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
    }
}
