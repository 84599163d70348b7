using System.Net;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Xunit.Abstractions;

namespace Bulk.Tests.Outcomes;

/// <summary>A snapshot that exists is found and loaded, or the process says it cannot and is not ready: history that
/// only a snapshot still holds (the outcomes stream's retention dropped it) is never lost without a word.</summary>
[Collection(BrokerCollection.Name)]
public sealed class SnapshotFindabilityTests(BrokerFixture broker, ITestOutputHelper output)
{
    // The smallest retention the settings take (1 MB, in segments of 250 KB), so that a test can outgrow it.
    private static readonly string[] SmallRetention = ["--RabbitMq:OutcomesMaxBytes=1000000"];

    [Fact]
    public async Task ASnapshot_IsStillFound_AfterMoreProcessStartsThanTheOldLookupSteppedOver_AndItsIdempotencyKeysStillHold()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, SmallRetention);
        var key = $"key-{Guid.NewGuid():N}";
        var body = SampleCampaigns.Personal(3);
        var id = await system.PostAsync(body, key);
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        await OnlyASnapshotRemembersAsync(system, outcomes);

        // Each process start appends one marker to the snapshot stream; an idle spell with many restarts (a crash loop,
        // a scale-out) leaves many after the last snapshot.
        await AppendMarkersAsync(outcomes.Snapshots.Stream, 250);
        var lookup = System.Diagnostics.Stopwatch.StartNew();
        var latest = await outcomes.Snapshots.ReadLatestAsync(CancellationToken.None);
        output.WriteLine($"the lookup stepped over 250 markers in {lookup.ElapsedMilliseconds} ms to the snapshot before {latest?.Snapshot.Offset}");
        await system.RestartFrontAsync();
        var restarted = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await restarted.WaitForStartupReplayAsync(TimeSpan.FromSeconds(60)));

        output.WriteLine($"after 250 markers the new Front loaded {restarted.LoadedSnapshot?.ToString() ?? "no snapshot"}");
        Assert.NotNull(restarted.LoadedSnapshot);
        Assert.Equal(id, await system.PostAsync(body, key));
    }

    [Fact]
    public async Task WhileTheSnapshotCannotBeRead_TheFrontIsNotReady_SaysWhy_AndTriesAgain_NeverStartingWithoutIt()
    {
        await using var relay = BrokerRelay.Start(broker.Uri);
        await using var system = await BulkSystem.StartFrontAsync(broker, SmallRetention);
        var key = $"key-{Guid.NewGuid():N}";
        var body = SampleCampaigns.Personal(3);
        var id = await system.PostAsync(body, key);
        await OnlyASnapshotRemembersAsync(system, system.FrontServices.GetRequiredService<OutcomeLog>());

        // A Front starting through the relay loses every broker connection each time it starts reading the outcomes'
        // snapshot stream from its end (a node restarting, a network blip), and reconnects at once.
        var snapshots = system.FrontServices.GetRequiredService<OutcomeLog>().Snapshots.Stream;
        relay.CutWhenSent(System.Text.Encoding.UTF8.GetBytes(snapshots), "\u000fx-stream-offsetS\0\0\0\u0004last"u8.ToArray());
        var logs = new CapturedLogs();
        var another = await system.StartAnotherFrontOnAsync(relay.Uri, services => services.AddSingleton<ILoggerProvider>(logs),
            [.. SmallRetention, "--Logging:LogLevel:Bulk=Information", "--Logging:Console:LogLevel:Default=Error"]);
        var why = "";
        await Poll.UntilAsync(async () =>
        {
            using var ready = await another.GetAsync("/readyz");
            why = await ready.Content.ReadAsStringAsync();
            return relay.CutsDone >= 2 && ready.StatusCode == HttpStatusCode.ServiceUnavailable && why.Contains("outcomes snapshot", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(60));
        output.WriteLine($"/readyz after {relay.CutsDone} failed loads: {why}");
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("outcomes: the latest snapshot could not be looked up", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("outcomes from offset first", StringComparison.Ordinal));

        relay.StopCuttingWhenSent();
        await Poll.UntilAsync(async () => (await another.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));

        using var again = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = JsonBody.Of(body) };
        again.Headers.Add("Idempotency-Key", key);
        using var answer = await another.SendAsync(again);
        Assert.Equal(id, System.Text.Json.JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task AMarkerWhoseAppendFails_IsNoLongerWaitedFor()
    {
        await using var relay = BrokerRelay.Start(broker.Uri);
        await using var system = await BulkSystem.StartFrontThroughAsync(broker, relay);
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));

        relay.Cut();
        for (var i = 0; i < 5; i++)
        {
            await Assert.ThrowsAnyAsync<IOException>(() => outcomes.ReadToNowAsync(CancellationToken.None));
        }

        // The lag probe's own marker may be waiting at this moment; the five that failed are not.
        Assert.InRange(outcomes.MarkersWaiting, 0, 1);
    }

    [Fact]
    public async Task ASnapshotWhoseFirstPartsRetentionDropped_IsNoSnapshot_NotAFailure_AndOneWrittenAfterIsFound()
    {
        var settings = new Bulk.Broker.RabbitMqOptions { Uri = broker.Uri, Prefix = $"test-{Guid.NewGuid():N}"[..17] };
        await using var connections = new Bulk.Broker.BrokerConnections(Microsoft.Extensions.Options.Options.Create(settings),
            new Bulk.Broker.BrokerClientName("test"), Microsoft.Extensions.Logging.Abstractions.NullLogger<Bulk.Broker.BrokerConnections>.Instance);
        var topology = settings.ToTopology();
        // The smallest size the settings take (1 MB, in segments of 250 KB), and a snapshot of six 256 KiB parts.
        var store = new Bulk.Broker.Streams.SnapshotStore(connections, Bulk.Contracts.Topology.SnapshotStream(topology.OutcomesStream),
            topology.SnapshotStreamArguments(1_000_000), settings.MaxMessageBytes);
        try
        {
            await store.WriteAsync(new byte[6 * 256 * 1024], 100, CancellationToken.None);
            var first = await StreamOffsetAsync(store.Stream, "first");
            Assert.True(first > 0, "retention kept the whole snapshot: the test proves nothing");

            Assert.Null(await store.ReadLatestAsync(CancellationToken.None));

            await store.WriteAsync(new byte[1000], 200, CancellationToken.None);
            await AppendMarkersAsync(store.Stream, 40);
            var found = await store.ReadLatestAsync(CancellationToken.None);
            Assert.NotNull(found);
            Assert.Equal((200L, 1000), (found.Value.Snapshot.Offset, found.Value.Data.Length));
        }
        finally
        {
            await broker.DeleteQueuesAsync(store.Stream);
        }
    }

    [Fact]
    public async Task ASnapshotSpanningSegmentsOfItsStream_IsFound()
    {
        var settings = new Bulk.Broker.RabbitMqOptions { Uri = broker.Uri, Prefix = $"test-{Guid.NewGuid():N}"[..17] };
        await using var connections = new Bulk.Broker.BrokerConnections(Microsoft.Extensions.Options.Options.Create(settings),
            new Bulk.Broker.BrokerClientName("test"), Microsoft.Extensions.Logging.Abstractions.NullLogger<Bulk.Broker.BrokerConnections>.Instance);
        var topology = settings.ToTopology();
        // Segments of 250 KB, and parts of 256 KiB: each part begins a segment, where the broker takes an offset for an
        // entry of its own that no consumer sees (with the default sizes, a snapshot that crosses a 100 MB boundary).
        var store = new Bulk.Broker.Streams.SnapshotStore(connections, Bulk.Contracts.Topology.SnapshotStream(topology.OutcomesStream),
            topology.SnapshotStreamArguments(1_000_000), settings.MaxMessageBytes);
        try
        {
            var data = Enumerable.Range(0, 3 * 256 * 1024).Select(i => (byte)i).ToArray();
            await store.WriteAsync(data, 300, CancellationToken.None);
            await AppendMarkersAsync(store.Stream, 5);

            var found = await store.ReadLatestAsync(CancellationToken.None);

            Assert.NotNull(found);
            Assert.Equal((300L, 3), (found.Value.Snapshot.Offset, found.Value.Snapshot.Parts));
            Assert.Equal(data, found.Value.Data);
        }
        finally
        {
            await broker.DeleteQueuesAsync(store.Stream);
        }
    }

    /// <summary>Writes a snapshot covering the campaign's history, then enough entries of a campaign of their own to make
    /// the outcomes stream's retention drop that history: from then on only the snapshot remembers it.</summary>
    private async Task OnlyASnapshotRemembersAsync(BulkSystem system, OutcomeLog outcomes)
    {
        var lastFact = await StreamOffsetAsync(system.Topology.OutcomesStream, "last");
        // Three times the retention.
        for (var i = 0; i < 40; i++)
        {
            await outcomes.RecordAsync([new OutcomeEvent(OutcomeType.Progress, "filler", DateTimeOffset.UtcNow, 1_000_000,
                Delivered: [.. Enumerable.Range(i * 10_000, 10_000)])], CancellationToken.None);
        }

        await outcomes.ReadToNowAsync(CancellationToken.None);
        await outcomes.WriteSnapshotNowAsync(CancellationToken.None);
        var firstKept = await StreamOffsetAsync(system.Topology.OutcomesStream, "first");
        output.WriteLine($"the campaign's entries end by offset {lastFact}; the stream now begins at {firstKept}");
        Assert.True(firstKept > lastFact, $"retention kept offset {firstKept} <= {lastFact}: the test proves nothing");
    }

    /// <summary>Appends markers as starting processes do: empty, with the marker header.</summary>
    private async Task AppendMarkersAsync(string stream, int count)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        for (var i = 0; i < count; i++)
        {
            var properties = new BasicProperties { Headers = new Dictionary<string, object?> { ["bulk-snapshot-marker"] = true } };
            await channel.BasicPublishAsync("", stream, true, properties, ReadOnlyMemory<byte>.Empty);
        }
    }

    /// <summary>The offset of the stream's first entry, or of the first entry of its last chunk.</summary>
    private async Task<long> StreamOffsetAsync(string stream, string where)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, 1, false);
        var first = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, d) =>
        {
            first.TrySetResult((long)d.BasicProperties.Headers!["x-stream-offset"]!);
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(stream, false, "", false, false, new Dictionary<string, object?> { ["x-stream-offset"] = where }, consumer);
        return await first.Task.WaitAsync(TimeSpan.FromSeconds(15));
    }
}
