using Bulk.Broker;
using Bulk.Broker.Telemetry;
using Bulk.Front.Access;
using Bulk.Front.Broker;
using Bulk.Front.Campaigns;
using Bulk.Front.DeadLetters;
using Bulk.Front.Health;
using Bulk.Front.Metrics;
using Bulk.Front.Page;
using Bulk.Front.Reference;
using Bulk.Front.Suppressions;
using OpenTelemetry.Trace;

namespace Bulk.Front;

/// <summary>Builds the Front: the HTTP edge that validates campaigns and hands them to the broker.</summary>
public static class FrontApp
{
    /// <param name="configure">Last word on the services, after Bulk's own registrations.</param>
    public static WebApplication Create(string[] args, Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);

        builder.AddBulkTelemetry("bulk-front");
        // The server span of each request; a campaign's trace starts at its POST. Probes and scrapes make no traces.
        builder.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddAspNetCoreInstrumentation(o =>
            o.Filter = http => !http.Request.Path.StartsWithSegments("/healthz") && !http.Request.Path.StartsWithSegments("/readyz")
                && !http.Request.Path.StartsWithSegments("/metrics")));
        builder.Services.AddBulkBroker("front");
        builder.Services.AddOptions<FrontOptions>().BindConfiguration(FrontOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) => options.ReadListSettings(configuration))
            .ValidateDataAnnotations().ValidateOnStart();

        // Kestrel enforces the body limit while the JSON is streamed in, so an oversized body never sits in memory.
        var maxBody = builder.Configuration.GetValue<long?>($"{FrontOptions.Section}:MaxBodyBytes") ?? new FrontOptions().MaxBodyBytes;
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = maxBody);

        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, FrontJson.Default);
            // The web default reads numbers from strings too; the Front writes numbers as numbers, and its OpenAPI
            // document says so instead of "an integer or a string".
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });
        builder.Services.AddProblemDetails();
        // A request the framework cannot bind is thrown to BindingProblems, which names the field, rather than a bare 400.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddExceptionHandler<BindingProblems>();
        builder.Services.AddSingleton<BrokerConnection>();
        builder.AddEdge();
        builder.AddAccess();
        builder.Services.AddHealth();
        builder.Services.AddCampaigns();
        builder.Services.AddDeadLetters();
        builder.Services.AddApiReference();
        builder.AddMetrics();
        configure?.Invoke(builder.Services);

        var app = builder.Build();

        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseEdge();
        app.UseAccess();
        app.MapHealthEndpoints();
        app.MapMetrics();
        app.MapCampaigns();
        app.MapDeadLetters();
        app.MapSuppressions();
        app.MapUnsubscribe();
        app.MapPage();
        app.MapApiReference();

        return app;
    }
}
