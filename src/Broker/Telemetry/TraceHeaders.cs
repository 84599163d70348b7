using System.Diagnostics;
using System.Text;

namespace Bulk.Broker.Telemetry;

/// <summary>Carries a trace across the broker: W3C <c>traceparent</c>/<c>tracestate</c> in the AMQP message headers.</summary>
/// <remarks>RabbitMQ.Client 7 has publish and deliver ActivitySources of its own. Bulk does not listen to them: they would
/// make a span of every stream entry every process reads. Bulk's own spans carry the context instead, and only on the
/// messages that are a campaign's work (the campaign, its jobs, their retries).</remarks>
public static class TraceHeaders
{
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";

    /// <summary>Writes <paramref name="activity"/>'s context into <paramref name="headers"/>, replacing any it had.</summary>
    public static void Inject(Activity? activity, IDictionary<string, object?> headers)
    {
        if (activity is null)
        {
            return;
        }

        headers.Remove(TraceParent);
        headers.Remove(TraceState);
        DistributedContextPropagator.Current.Inject(activity, headers, static (carrier, name, value) =>
        {
            if (carrier is IDictionary<string, object?> map && value is not null)
            {
                map[name] = value;
            }
        });
    }

    /// <summary>The context a message carries, or <c>default</c> when it carries none (or a malformed one).</summary>
    public static ActivityContext Extract(IDictionary<string, object?>? headers)
    {
        if (headers is null || !headers.ContainsKey(TraceParent))
        {
            return default;
        }

        DistributedContextPropagator.Current.ExtractTraceIdAndState(headers, static (carrier, name, out value, out values) =>
        {
            values = null;
            value = carrier is IDictionary<string, object?> map && map.TryGetValue(name, out var raw) ? raw switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                string text => text,
                _ => null,
            } : null;
        }, out var traceParent, out var traceState);

        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    /// <summary>Copies the trace context of a message's <paramref name="headers"/>, if it has one, into <paramref name="to"/>.</summary>
    public static void Copy(IDictionary<string, object?>? headers, IDictionary<string, object?> to)
    {
        foreach (var name in (string[])[TraceParent, TraceState])
        {
            if (headers is not null && headers.TryGetValue(name, out var value) && value is not null)
            {
                to[name] = value;
            }
        }
    }
}
