using System.Text.Json.Serialization.Metadata;
using Bulk.Broker.Streams;
using Bulk.Contracts;
using Bulk.Contracts.Suppressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Suppressions;

/// <summary>The suppressions stream, folded into a <see cref="SuppressionList"/> in every process.</summary>
/// <remarks>
/// A stream of its own, kept without an age limit: an unsubscribe must outlive the outcomes stream's retention.
/// </remarks>
public sealed class SuppressionLog(
    IOptions<RabbitMqOptions> options, IOptions<HistoryOptions> history, BrokerConnections connections, SuppressionList list, ILogger<SuppressionLog> logger)
    : EventStream<SuppressionEvent>(connections, history.Value, options.Value.MaxMessageBytes, logger)
{
    private readonly Topology topology = options.Value.ToTopology();

    public SuppressionList List => list;

    protected override string StreamName => topology.SuppressionsStream;

    protected override IDictionary<string, object?> StreamArguments => topology.SuppressionsStreamArguments;

    protected override JsonTypeInfo<SuppressionEvent> TypeInfo => BulkJson.Default.SuppressionEvent;

    protected override void Apply(SuppressionEvent e) => list.Apply(e);

    protected override void WriteSnapshot(BinaryWriter writer) => list.WriteTo(writer);

    protected override Action<BinaryWriter> CaptureSnapshot() => list.CopyForSnapshot();

    protected override void ReadSnapshot(BinaryReader reader) => list.ReadFrom(reader);

    protected override void ClearFold() => list.Clear();

    protected override SuppressionEvent NewMarker(string id) => SuppressionEvent.Marker(id);

    protected override string? MarkerIdOf(SuppressionEvent e) => e.MarkerId;
}
