using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace Bulk.Worker.Metrics;

/// <summary>Serves the Worker's metrics for Prometheus at <c>/metrics</c> on the URLs of <c>Metrics__Urls</c>.</summary>
/// <remarks>A Worker has no web server of its own; the OpenTelemetry exporter's small HttpListener is all it needs.</remarks>
public static class MetricsListener
{
    public static IHostApplicationBuilder AddMetricsListener(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<MetricsOptions>().BindConfiguration(MetricsOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        if (string.IsNullOrWhiteSpace(builder.Configuration[$"{MetricsOptions.Section}:Urls"]))
        {
            return builder;
        }

        // Read when the meter provider starts, after the options were validated: a bad URL stops the Worker first.
        builder.Services.AddOptions<PrometheusHttpListenerOptions>()
            .Configure<IOptions<MetricsOptions>>((listener, metrics) =>
            {
                var prefixes = metrics.Value.ToPrefixes();
                listener.ConfigureHttpListener = (options, http) =>
                {
                    // In place of the one localhost prefix the exporter makes of Host and Port.
                    var path = (options.ScrapeEndpointPath ?? "/metrics").Trim('/');
                    http.Prefixes.Clear();
                    foreach (var prefix in prefixes)
                    {
                        http.Prefixes.Add($"{prefix}{path}/");
                    }
                };
            });
        builder.Services.ConfigureOpenTelemetryMeterProvider(m => m.AddPrometheusHttpListener());
        return builder;
    }
}
