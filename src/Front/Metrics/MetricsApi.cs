using Bulk.Front.Campaigns;
using Bulk.Front.DeadLetters;
using OpenTelemetry.Metrics;

namespace Bulk.Front.Metrics;

/// <summary><c>/metrics</c>: the Front's metrics for Prometheus, on its own port, with no API key (like the probes).</summary>
public static class MetricsApi
{
    /// <summary>Bulk's meter (in TelemetryRegistration), ASP.NET Core's own request metrics (<c>http.server.request.duration</c>
    /// by <c>http.route</c>), and the gauges only a Front can read: campaigns by status, the dead-letter queue.</summary>
    public static IHostApplicationBuilder AddMetrics(this IHostApplicationBuilder builder)
    {
        builder.Services.ConfigureOpenTelemetryMeterProvider(m => m.AddAspNetCoreInstrumentation().AddPrometheusExporter());
        builder.Services.AddHostedService<CampaignMetrics>();
        builder.Services.AddHostedService<DeadLetterMetrics>();
        return builder;
    }

    public static IEndpointConventionBuilder MapMetrics(this IEndpointRouteBuilder app) =>
        app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous().ExcludeFromDescription();
}
