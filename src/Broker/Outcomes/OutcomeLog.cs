using System.Text.Json.Serialization.Metadata;
using Bulk.Broker.Streams;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Outcomes;

/// <summary>The outcomes stream: what happened to every recipient of every campaign, folded into a <see cref="CampaignLedger"/>.</summary>
public sealed partial class OutcomeLog(IOptions<RabbitMqOptions> options, BrokerConnections connections, CampaignLedger ledger, ILogger<OutcomeLog> logger)
    : EventStream<OutcomeEvent>(connections, logger)
{
    private DateTimeOffset? oldest;

    private readonly RabbitMqOptions settings = options.Value;
    private readonly Topology topology = options.Value.ToTopology();

    public CampaignLedger Ledger => ledger;

    protected override string StreamName => topology.OutcomesStream;

    protected override IDictionary<string, object?> StreamArguments =>
        topology.OutcomesStreamArguments(settings.OutcomesMaxAge, settings.OutcomesMaxBytes);

    protected override JsonTypeInfo<OutcomeEvent> TypeInfo => BulkJson.Default.OutcomeEvent;

    protected override void Apply(OutcomeEvent e)
    {
        oldest ??= e.At;
        ledger.Apply(e);
    }

    protected override void OnStartupReplayed(long bytes)
    {
        if (oldest is { } from
            && RetentionCheck.Warning(from, DateTimeOffset.UtcNow, bytes, settings.OutcomesMaxBytes, settings.OutcomesMaxAge) is { } warning)
        {
            LogRetentionCutBySize(topology.OutcomesStream, warning);
        }
    }

    [LoggerMessage(LogLevel.Warning, "{Stream}: {Warning}")]
    private partial void LogRetentionCutBySize(string stream, string warning);

    protected override OutcomeEvent NewMarker(string id) => OutcomeEvent.Marker(id);

    protected override string? MarkerIdOf(OutcomeEvent e) => e.MarkerId;
}
