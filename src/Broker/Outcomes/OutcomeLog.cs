using System.Text.Json.Serialization.Metadata;
using Bulk.Broker.Streams;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Outcomes;

/// <summary>The outcomes stream: what happened to every recipient of every campaign, folded into a <see cref="CampaignLedger"/>.</summary>
public sealed partial class OutcomeLog(
    IOptions<RabbitMqOptions> options, IOptions<HistoryOptions> history, BrokerConnections connections, CampaignLedger ledger, TimeProvider clock,
    ILogger<OutcomeLog> logger)
    : EventStream<OutcomeEvent>(connections, history.Value, options.Value.MaxMessageBytes, logger)
{
    private readonly RabbitMqOptions settings = options.Value;
    private readonly Topology topology = options.Value.ToTopology();

    public CampaignLedger Ledger => ledger;

    protected override string StreamName => topology.OutcomesStream;

    protected override IDictionary<string, object?> StreamArguments =>
        topology.OutcomesStreamArguments(settings.OutcomesMaxAge, settings.OutcomesMaxBytes);

    protected override JsonTypeInfo<OutcomeEvent> TypeInfo => BulkJson.Default.OutcomeEvent;

    protected override void Apply(OutcomeEvent e) => ledger.Apply(e);

    protected override void OnStartupReplayed(long bytes)
    {
        if (ledger.FirstEntryAt is { } from
            && RetentionCheck.Warning(from, DateTimeOffset.UtcNow, bytes, settings.OutcomesMaxBytes, settings.OutcomesMaxAge) is { } warning)
        {
            LogRetentionCutBySize(topology.OutcomesStream, warning);
        }
    }

    protected override void WriteSnapshot(BinaryWriter writer) => ledger.WriteTo(writer);

    protected override void ReadSnapshot(BinaryReader reader) => ledger.ReadFrom(reader);

    protected override void ClearFold() => ledger.Clear();

    /// <summary>Finished campaigns are remembered for <see cref="HistoryOptions.SummaryDays"/>, then forgotten.</summary>
    protected override void Housekeeping()
    {
        if (ledger.Forget(clock.GetUtcNow().AddDays(-history.Value.SummaryDays)) is > 0 and var forgotten)
        {
            LogForgotten(forgotten, history.Value.SummaryDays);
        }
    }

    [LoggerMessage(LogLevel.Information, "Forgot {Count} campaigns finished more than {Days} days ago")]
    private partial void LogForgotten(int count, int days);

    [LoggerMessage(LogLevel.Warning, "{Stream}: {Warning}")]
    private partial void LogRetentionCutBySize(string stream, string warning);

    protected override OutcomeEvent NewMarker(string id) => OutcomeEvent.Marker(id);

    protected override string? MarkerIdOf(OutcomeEvent e) => e.MarkerId;
}
