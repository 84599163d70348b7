using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// A process that records an entry reads its own write, but only in the stream's order: its fold never applies an entry
/// the stream does not have, nor one out of its place. Were the entry applied here at once, beside the tail, a
/// <c>resumed</c> written by another process right after this one's <c>held</c> could be applied before the
/// <c>held</c>, and this process would hold the campaign for good while every other one sends it.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class RecordOrderTests(BrokerFixture broker)
{
    [Fact]
    public async Task AnEntryRecordedHere_WhileAnotherProcessWritesTheNextOne_IsFoldedInStreamOrder()
    {
        var topology = new Topology($"test-{Guid.NewGuid():N}"[..17]);
        var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = broker.Uri, Prefix = topology.Prefix }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        var ledger = new CampaignLedger();
        var stream = new SlowLocalApplyStream(connections, topology, ledger);
        var id = Guid.NewGuid().ToString("N");
        try
        {
            await stream.StartAsync(CancellationToken.None);
            await stream.StartupReplayed.WaitAsync(TimeSpan.FromSeconds(30));
            await broker.PublishAsync(topology.OutcomesStream, Entry(new OutcomeEvent(OutcomeType.Accepted, id, DateTimeOffset.UtcNow, 10)));

            // This process holds the campaign; once the held entry is on the stream (its tail has read it), another
            // process resumes it, as a Front does when an operator resumes a held campaign at once.
            var holding = stream.RecordAsync([new OutcomeEvent(OutcomeType.Held, id, DateTimeOffset.UtcNow, 10, Reason: "550 no")], CancellationToken.None);
            await Poll.UntilAsync(() => Task.FromResult(stream.TailApplied(OutcomeType.Held)), TimeSpan.FromSeconds(10));
            await broker.PublishAsync(topology.OutcomesStream, Entry(new OutcomeEvent(OutcomeType.Resumed, id, DateTimeOffset.UtcNow, 10)));
            await holding.WaitAsync(TimeSpan.FromSeconds(20));
            await Poll.UntilAsync(() => Task.FromResult(stream.TailApplied(OutcomeType.Resumed)), TimeSpan.FromSeconds(10));

            Assert.Null(ledger.Find(id)!.HeldReason);
            Assert.NotEqual(CampaignLedger.Statuses.Held, ledger.Find(id)!.Status);
        }
        finally
        {
            await stream.StopAsync(CancellationToken.None);
            await broker.DeleteQueuesAsync(topology.OutcomesStream, Topology.SnapshotStream(topology.OutcomesStream));
            await connections.DisposeAsync();
        }
    }

    private static byte[] Entry(OutcomeEvent e) => JsonSerializer.SerializeToUtf8Bytes(e, BulkJson.Default.OutcomeEvent);

    /// <summary>The outcomes fold, where an entry applied by the recording call (not by the tail) is applied only once
    /// the tail has gone past it: the moment a thread is preempted between the confirm and the apply, drawn out.</summary>
    private sealed class SlowLocalApplyStream(BrokerConnections connections, Topology topology, CampaignLedger ledger)
        : EventStream<OutcomeEvent>(connections, new HistoryOptions(), 16 * 1024 * 1024, NullLogger.Instance)
    {
        private readonly AsyncLocal<bool> recording = new();
        private readonly List<OutcomeType> tailApplied = [];

        public bool TailApplied(OutcomeType type)
        {
            lock (tailApplied)
            {
                return tailApplied.Contains(type);
            }
        }

        public new async Task RecordAsync(IReadOnlyList<OutcomeEvent> events, CancellationToken cancellationToken)
        {
            recording.Value = true;
            await base.RecordAsync(events, cancellationToken);
        }

        protected override string StreamName => topology.OutcomesStream;

        protected override IDictionary<string, object?> StreamArguments => topology.OutcomesStreamArguments("1h", 10_000_000);

        protected override JsonTypeInfo<OutcomeEvent> TypeInfo => BulkJson.Default.OutcomeEvent;

        protected override void Apply(OutcomeEvent e)
        {
            if (recording.Value)
            {
                // Applied by the recording call: after the tail has applied whatever came next.
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (!TailApplied(OutcomeType.Resumed) && DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(20);
                }
            }
            else
            {
                lock (tailApplied)
                {
                    tailApplied.Add(e.Type);
                }
            }

            ledger.Apply(e);
        }

        protected override OutcomeEvent NewMarker(string id) => OutcomeEvent.Marker(id);

        protected override string? MarkerIdOf(OutcomeEvent e) => e.MarkerId;

        protected override void WriteSnapshot(BinaryWriter writer) => ledger.WriteTo(writer);

        protected override void ReadSnapshot(BinaryReader reader) => ledger.ReadFrom(reader);

        protected override void ClearFold() => ledger.Clear();
    }
}
