using Bulk.Broker;
using Bulk.Broker.Telemetry;
using Bulk.Broker.Suppressions;
using Bulk.Templates;
using Bulk.Worker.Delivery;
using Bulk.Worker.Metrics;
using Bulk.Worker.Rendering;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Options;

namespace Bulk.Worker;

/// <summary>Builds a Worker: consumes jobs from the broker and delivers them over SMTP.</summary>
public static class WorkerHost
{
    /// <param name="configure">Last word on the services, after Bulk's own registrations.</param>
    public static IHost Create(string[] args, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(args);

        builder.AddBulkTelemetry("bulk-worker");
        builder.AddMetricsListener();
        // Registered first so that its streams stop last (hosted services stop in reverse order): the consumer drains
        // first, while outcomes can still be recorded.
        builder.Services.AddBulkBroker("worker");
        builder.Services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<SmtpSecurityNotice>();
        builder.Services.AddOptions<DeliveryOptions>().BindConfiguration(DeliveryOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        // Workers put unsubscribe links in every mail: on top of what every process checks, they need the Front's address.
        builder.Services.AddSingleton<IValidateOptions<UnsubscribeOptions>, UnsubscribeOptions.LinksInMailValidator>();
        builder.Services.AddOptions<DkimOptions>().BindConfiguration(DkimOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddLiquidSandbox();

        // SIGTERM gives in-flight sends this long to finish before the rest of each job is handed back.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(90));

        builder.Services.AddSingleton<DeliveryMetrics>();
        builder.Services.AddSingleton<SmtpMetrics>();
        builder.Services.AddSingleton<OutcomeRecorder>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OutcomeRecorder>());
        builder.Services.AddSingleton<SmtpConnectionPool>();
        builder.Services.AddSingleton<GlobalRateLimit>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<GlobalRateLimit>());
        builder.Services.AddSingleton<SendRateLimits>();
        builder.Services.AddSingleton<SmtpSender>();
        builder.Services.AddSingleton<MessageSigner>();
        builder.Services.AddSingleton<MessageRenderer>();
        builder.Services.AddSingleton<CampaignTemplates>();
        // One set of turns at rendering for the whole Worker, shared fairly between the campaigns it has in hand.
        builder.Services.AddSingleton(new RenderTurns());
        builder.Services.AddSingleton<JobDelivery>();
        builder.Services.AddSingleton<DeliveryObserver>();
        builder.Services.AddSingleton<DeliveryConsumer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DeliveryConsumer>());
        builder.Services.AddHostedService<PausedJobs>();
        builder.Services.AddSingleton<CampaignTrail>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CampaignTrail>());
        configure?.Invoke(builder.Services);

        return builder.Build();
    }
}
