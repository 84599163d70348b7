using Bulk.Contracts;
using Bulk.Templates;
using Bulk.Worker.Delivery;
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

        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<SmtpSecurityNotice>();
        builder.Services.AddOptions<DeliveryOptions>().BindConfiguration(DeliveryOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<UnsubscribeOptions>().BindConfiguration(UnsubscribeOptions.Section)
            .ValidateDataAnnotations()
            .Validate(o => !string.IsNullOrEmpty(o.BaseUrl),
                "Unsubscribe__BaseUrl is required: where recipients reach the Front's unsubscribe links, e.g. https://mail.example.com")
            .ValidateOnStart();
        builder.Services.AddHostedService<DemoSecretWarning>();
        builder.Services.AddOptions<DkimOptions>().BindConfiguration(DkimOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<TemplateLimits>().BindConfiguration(TemplateLimits.Section)
            .ValidateDataAnnotations().ValidateOnStart();

        // SIGTERM gives in-flight sends this long to finish before the rest of each job is handed back.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(90));

        // Hosted services stop in reverse order: the consumer drains first, while outcomes can still be recorded.
        builder.Services.AddSingleton<CampaignLedger>();
        builder.Services.AddSingleton<OutcomeLog>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OutcomeLog>());
        builder.Services.AddSingleton<SuppressionList>();
        builder.Services.AddSingleton<SuppressionLog>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SuppressionLog>());
        builder.Services.AddSingleton<OutcomeRecorder>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OutcomeRecorder>());
        builder.Services.AddSingleton<SmtpConnectionPool>();
        builder.Services.AddSingleton<GlobalRateLimit>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<GlobalRateLimit>());
        builder.Services.AddSingleton<SendRateLimits>();
        builder.Services.AddSingleton<SmtpSender>();
        builder.Services.AddSingleton<MessageSigner>();
        builder.Services.AddSingleton(sp => new LiquidSandbox(sp.GetRequiredService<IOptions<TemplateLimits>>().Value));
        builder.Services.AddSingleton<MessageRenderer>();
        builder.Services.AddSingleton<JobDelivery>();
        builder.Services.AddSingleton<DeliveryObserver>();
        builder.Services.AddSingleton<DeliveryConsumer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DeliveryConsumer>());
        configure?.Invoke(builder.Services);

        return builder.Build();
    }
}
