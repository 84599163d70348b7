using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Bulk.Broker.Telemetry;

public static class TelemetryRegistration
{
    /// <summary>The OTLP endpoint as set, checked at start.</summary>
    private sealed class OtlpEndpoint
    {
        public string? Value { get; set; }
    }

    /// <summary>Logs, traces and metrics the same way in every Bulk process (what eShop's ServiceDefaults do).</summary>
    /// <param name="defaultServiceName">The <c>service.name</c> unless <c>OTEL_SERVICE_NAME</c> says otherwise.</param>
    /// <remarks>
    /// Logs: one line per entry, or one JSON object per line with <c>Logging__Console__FormatterName=json</c>, carrying
    /// the trace and span ids and the scopes (the campaign id). Traces and metrics: the Bulk source and meter, the
    /// runtime and the process; exported over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.
    /// <c>OTEL_SDK_DISABLED=true</c> turns traces and metrics off.
    /// </remarks>
    public static IHostApplicationBuilder AddBulkTelemetry(this IHostApplicationBuilder builder, string defaultServiceName)
    {
        // Below every other source, so that appsettings, the environment and the command line all override it: per-request
        // lines at Information are too loud for a mailer under load, whether or not an appsettings.json is found.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = [new("Logging:LogLevel:Microsoft.AspNetCore", "Warning")],
        });
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        // Read here rather than left to the console provider's own binding, which does not take it in these hosts.
        switch (builder.Configuration["Logging:Console:FormatterName"]?.ToLowerInvariant())
        {
            case ConsoleFormatterNames.Json:
                builder.Logging.AddJsonConsole(o =>
                {
                    o.IncludeScopes = true;
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                });
                break;
            case ConsoleFormatterNames.Systemd:
                builder.Logging.AddSystemdConsole();
                break;
            default:
                builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
                break;
        }

        var serviceName = builder.Configuration["OTEL_SERVICE_NAME"];
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(string.IsNullOrWhiteSpace(serviceName) ? defaultServiceName : serviceName))
            .WithTracing(t => t.AddSource(BulkTelemetry.Name))
            .WithMetrics(m => m.AddMeter(BulkTelemetry.Name).AddRuntimeInstrumentation().AddProcessInstrumentation());
        var otlp = builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (!string.IsNullOrWhiteSpace(otlp))
        {
            telemetry.UseOtlpExporter();
            // The exporter would take a wrong address silently and export nothing: say so at start instead.
            builder.Services.AddOptions<OtlpEndpoint>().Configure(o => o.Value = otlp)
                .Validate(o => Uri.TryCreate(o.Value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https",
                    "OTEL_EXPORTER_OTLP_ENDPOINT must be an absolute http or https URL, e.g. http://127.0.0.1:4317")
                .ValidateOnStart();
        }

        return builder;
    }
}
