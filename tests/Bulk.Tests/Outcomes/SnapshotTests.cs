using System.Net;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Suppressions;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Xunit.Abstractions;

namespace Bulk.Tests.Outcomes;

/// <summary>Snapshots on a real broker: a new process starts from the latest, and what the streams' retention drops
/// before a new process starts is still known.</summary>
[Collection(BrokerCollection.Name)]
public sealed class SnapshotTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const string Snapshots = "--History:SnapshotSeconds=1";

    [Fact]
    public async Task ANewFront_StartsFromTheLatestSnapshots_AndReadsOnlyWhatCameAfter()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker, Snapshots);
        await system.StartWorkerAsync(smtp, Snapshots);
        var first = await system.PostAsync(SampleCampaigns.Personal(40), $"key-{Guid.NewGuid():N}");
        await system.WaitForStatusAsync(first, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        var suppressed = await system.Http.PostAsync("/suppressions", JsonBody.Of("""{"emails":["gone@example.org","Left@Example.org"]}"""));
        Assert.True(suppressed.IsSuccessStatusCode, suppressed.StatusCode.ToString());
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        var covered = await WaitForSnapshotAsync(system, outcomes.Snapshots.Stream);
        await WaitForSnapshotAsync(system, system.FrontServices.GetRequiredService<SuppressionLog>().Snapshots.Stream);

        var second = await system.PostAsync(SampleCampaigns.Personal(5));
        await system.WaitForStatusAsync(second, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        await system.RestartFrontAsync();
        // The snapshots are loaded as the streams' tails start, in the background.
        Assert.True(await system.FrontServices.GetRequiredService<OutcomeLog>().WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await system.FrontServices.GetRequiredService<SuppressionLog>().WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));

        var loaded = system.FrontServices.GetRequiredService<OutcomeLog>().LoadedSnapshot;
        output.WriteLine($"snapshot covered offsets before {covered}; the new Front loaded one before {loaded?.Offset} ({loaded?.Bytes} bytes)");
        Assert.NotNull(loaded);
        Assert.True(loaded.Offset > 0);
        Assert.NotNull(system.FrontServices.GetRequiredService<SuppressionLog>().LoadedSnapshot);
        Assert.Equal((CampaignLedger.Statuses.Completed, 40), ((await system.StatusAsync(first)).Status, (await system.StatusAsync(first)).Delivered));
        Assert.Equal((CampaignLedger.Statuses.Completed, 5), ((await system.StatusAsync(second)).Status, (await system.StatusAsync(second)).Delivered));
        var list = system.FrontServices.GetRequiredService<SuppressionList>();
        Assert.Equal((2, SuppressionReasons.Operator), (list.Count, list.Find("LEFT@example.org")?.Reason));
    }

    [Fact]
    public async Task WhatTheOutcomesRetentionDropped_IsStillKnown_ACompletedCampaignStaysCompleted_AndAPausedOneStaysPaused()
    {
        await using var sink = await SmtpSink.StartAsync();
        // The smallest retention the settings take (1 MB, in segments of 250 KB), so that a test can outgrow it.
        string[] settings = [Snapshots, "--RabbitMq:OutcomesMaxBytes=1000000"];
        await using var system = await BulkSystem.StartFrontAsync(broker, settings);
        var worker = await system.StartWorkerOnAsync(sink.Port, settings);
        var completed = await system.PostAsync(SampleCampaigns.Personal(30));
        await system.WaitForStatusAsync(completed, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        await worker.StopAsync();
        var paused = await system.PostAsync(SampleCampaigns.Personal(50));
        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{paused}/pause", null)).StatusCode);
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        var lastFact = await WaitForSnapshotAsync(system, outcomes.Snapshots.Stream);

        // Three times the retention in entries of a campaign of its own: the stream drops its oldest segments.
        var filler = Enumerable.Range(0, 40).Select(i => new OutcomeEvent(OutcomeType.Progress, "filler", DateTimeOffset.UtcNow, 1_000_000,
            Delivered: [.. Enumerable.Range(i * 10_000, 10_000)])).ToList();
        foreach (var e in filler)
        {
            await outcomes.RecordAsync([e], CancellationToken.None);
        }

        var firstKept = await FirstOffsetAsync(system.Topology.OutcomesStream);
        output.WriteLine($"the facts of both campaigns were before offset {lastFact}; the stream now begins at {firstKept}");
        Assert.True(firstKept > lastFact, $"retention kept offset {firstKept} <= {lastFact}: the test proves nothing");
        await WaitForSnapshotAsync(system, outcomes.Snapshots.Stream, after: lastFact);

        await system.RestartFrontAsync();
        await system.StartWorkerOnAsync(sink.Port, settings);
        var sent = sink.Recipients().Count;
        await Task.Delay(TimeSpan.FromSeconds(5));

        Assert.Equal((CampaignLedger.Statuses.Completed, 30), ((await system.StatusAsync(completed)).Status, (await system.StatusAsync(completed)).Delivered));
        Assert.Equal(CampaignLedger.Statuses.Paused, (await system.StatusAsync(paused)).Status);
        Assert.Equal(sent, sink.Recipients().Count);
        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{paused}/resume", null)).StatusCode);
        var done = await system.WaitForStatusAsync(paused, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        Assert.Equal(50, done.Delivered);
    }

    [Fact]
    public async Task ASnapshotThatCannotBeRead_IsSkipped_AndTheStreamIsReadFromItsFirstEntry()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var id = await system.PostAsync(SampleCampaigns.Personal(12));
        await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        // Parts that look whole but hold no snapshot of this format (another version's, or damage), covering far past the end.
        var stream = system.FrontServices.GetRequiredService<OutcomeLog>().Snapshots.Stream;
        await DeclareAsync(stream, system.Topology.SnapshotStreamArguments(new Bulk.Broker.Streams.HistoryOptions().SnapshotStreamMaxBytes));
        await using (var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true)))
        {
            var properties = new BasicProperties
            {
                Headers = new Dictionary<string, object?>
                {
                    ["bulk-snapshot"] = "bad", ["bulk-snapshot-part"] = 0, ["bulk-snapshot-parts"] = 1, ["bulk-snapshot-offset"] = 1_000_000L,
                },
            };
            await channel.BasicPublishAsync("", stream, true, properties, "BULKSNAP1 but not a snapshot"u8.ToArray());
        }

        // Held here, the snapshot writer's lock keeps the stopping Front from writing its snapshot on stop after the bad one.
        await using var writerLock = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var held = await writerLock.CreateChannelAsync();
        await held.QueueDeclareAsync($"{stream}.writer", durable: false, exclusive: true, autoDelete: true);
        await system.RestartFrontAsync();
        var outcomes = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await outcomes.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));

        Assert.Null(outcomes.LoadedSnapshot);
        var status = await system.StatusAsync(id);
        Assert.Equal((CampaignLedger.Statuses.Completed, 12), (status.Status, status.Delivered));
    }

    [Fact]
    public async Task AJobOfACampaignNoLongerKnown_StaysInThePausedQueue_RatherThanResumeByItself()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerOnAsync(sink.Port);
        var mover = worker.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Bulk.Worker.Delivery.PausedJobs>().Single();
        // As left by a campaign paused before its history was dropped: the job, and nothing on the stream.
        var job = new Bulk.Contracts.DeliveryJob(Bulk.Contracts.DeliveryJob.CurrentVersion, "forgotten-campaign",
            new Bulk.Contracts.MessageTemplate("news@example.com", "Hi", "Hello", null), [new Bulk.Contracts.JobRecipient(0, "a@example.org")], Total: 1);
        await DeclareAsync(system.Topology.PausedQueue, system.Topology.PausedQueueArguments);
        await broker.PublishAsync(system.Topology.PausedQueue, Bulk.Broker.JobMessages.Serialize(job));

        await Poll.UntilAsync(() => Task.FromResult(mover.Taken > 0), TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(3));

        output.WriteLine($"jobs taken from the paused queue and put back: {mover.Taken}");
        Assert.Equal(1u, await broker.MessageCountAsync(system.Topology.PausedQueue));
        Assert.Empty(sink.Recipients());
        Assert.Null(system.FrontServices.GetRequiredService<OutcomeLog>().Ledger.Find("forgotten-campaign"));
    }

    private async Task DeclareAsync(string queue, IDictionary<string, object?> arguments)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments);
    }

    /// <summary>Waits for a snapshot covering more than <paramref name="after"/> and returns the offset it covers to.</summary>
    private async Task<long> WaitForSnapshotAsync(BulkSystem system, string stream, long after = 0)
    {
        long covered = -1;
        await Poll.UntilAsync(async () =>
        {
            covered = await LatestSnapshotOffsetAsync(stream);
            return covered > after;
        }, TimeSpan.FromSeconds(30));
        return covered;
    }

    private async Task<long> LatestSnapshotOffsetAsync(string stream)
    {
        var entries = await ReadAllAsync(stream);
        return entries.Select(h => h.TryGetValue("bulk-snapshot-offset", out var o) && o is long offset ? offset : -1).DefaultIfEmpty(-1).Max();
    }

    private async Task<long> FirstOffsetAsync(string stream) =>
        (await ReadAllAsync(stream, 1)).Select(h => (long)h["x-stream-offset"]!).First();

    /// <summary>The headers of a stream's entries from its first, read until the stream goes quiet.</summary>
    private async Task<List<IDictionary<string, object?>>> ReadAllAsync(string stream, int max = int.MaxValue)
    {
        var factory = new ConnectionFactory { Uri = new Uri(broker.Uri) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, 100, false);
        await using var acks = new Bulk.Broker.AckGate(channel);
        var headers = new List<IDictionary<string, object?>>();
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, d) =>
        {
            lock (headers)
            {
                headers.Add(d.BasicProperties.Headers ?? new Dictionary<string, object?>());
            }

            await acks.AckAsync(d.DeliveryTag);
        };
        await channel.BasicConsumeAsync(stream, false, "", false, false, new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        int seen;
        do
        {
            lock (headers)
            {
                seen = headers.Count;
            }

            await Task.Delay(300);
        }
        while (headers.Count != seen && seen < max);

        lock (headers)
        {
            return [.. headers];
        }
    }
}
