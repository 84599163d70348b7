using System.Diagnostics;
using System.Diagnostics.Metrics;
using RabbitMQ.Client;

namespace Bulk.Broker.Telemetry;

/// <summary>The one trace source and the one meter every Bulk process writes to; <c>service.name</c> tells them apart.</summary>
/// <remarks>
/// A campaign is one trace: the Front's <c>POST /campaigns</c> span, its publish, then in the Workers the split and
/// each job, whose parents travel in the messages (<see cref="TraceHeaders"/>). Each mail is an event of its job's
/// span, never a span of its own. Span and attribute names follow OpenTelemetry's messaging conventions; what is
/// Bulk's own is under <c>bulk.</c>.
/// </remarks>
public static class BulkTelemetry
{
    public const string Name = "Bulk";

    public const string CampaignIdTag = "bulk.campaign.id";

    private static readonly string? Version = typeof(BulkTelemetry).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(Name, Version);

    public static readonly Meter Meter = new(Name, Version);

    /// <summary>A producer span for a publish of a campaign's work to <paramref name="queue"/>, its context written into <paramref name="properties"/>.</summary>
    public static Activity? StartPublish(string queue, string campaignId, BasicProperties properties)
    {
        var activity = Source.StartActivity($"publish {queue}", ActivityKind.Producer);
        if (activity is not null)
        {
            SetMessagingTags(activity, "send", "publish", queue, properties.MessageId);
            activity.SetTag(CampaignIdTag, campaignId);
            properties.Headers ??= new Dictionary<string, object?>();
            TraceHeaders.Inject(activity, properties.Headers);
        }

        return activity;
    }

    /// <summary>A consumer span for a message of <paramref name="queue"/>, a child of the span that published it.</summary>
    public static Activity? StartProcess(string queue, IReadOnlyBasicProperties properties)
    {
        var parent = TraceHeaders.Extract(properties.Headers);
        var activity = Source.StartActivity($"process {queue}", ActivityKind.Consumer, parent);
        if (activity is not null)
        {
            SetMessagingTags(activity, "process", "process", queue, properties.MessageId);
        }

        return activity;
    }

    /// <summary>Writes the current span's context into <paramref name="properties"/>: what a job leaves behind stays in its campaign's trace.</summary>
    public static BasicProperties WithTraceContext(this BasicProperties properties)
    {
        if (Activity.Current is { } current)
        {
            properties.Headers ??= new Dictionary<string, object?>();
            TraceHeaders.Inject(current, properties.Headers);
        }

        return properties;
    }

    private static void SetMessagingTags(Activity activity, string type, string operation, string queue, string? messageId)
    {
        if (!activity.IsAllDataRequested)
        {
            return;
        }

        activity.SetTag("messaging.system", "rabbitmq");
        activity.SetTag("messaging.operation.type", type);
        activity.SetTag("messaging.operation.name", operation);
        activity.SetTag("messaging.destination.name", queue);
        activity.SetTag("messaging.rabbitmq.destination.routing_key", queue);
        if (messageId is not null)
        {
            activity.SetTag("messaging.message.id", messageId);
        }
    }
}
