using Bulk.Broker.Hosting;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Broker.Suppressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bulk.Broker;

public static class BrokerRegistration
{
    /// <summary>What the Front and every Worker share of the broker: its settings, the process's two connections, and
    /// the outcomes and suppressions streams each folded into this process's ledger and list.</summary>
    /// <remarks>
    /// The streams' tails are hosted services registered here, before the host's own: hosted services stop in reverse
    /// order, so whatever the host runs stops while outcomes can still be recorded.
    /// </remarks>
    /// <param name="process">How this process's connections are named in RabbitMQ: <c>front</c>, <c>worker</c>.</param>
    public static IServiceCollection AddBulkBroker(this IServiceCollection services, string process)
    {
        services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<UnsubscribeOptions>().BindConfiguration(UnsubscribeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<HistoryOptions>().BindConfiguration(HistoryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHostedService<DemoSecretWarning>();
        services.AddSingleton(new BrokerClientName(process));
        services.AddSingleton<BrokerConnections>();
        services.AddSingleton<CampaignLedger>();
        services.AddSingleton<OutcomeLog>();
        services.AddHostedService(sp => sp.GetRequiredService<OutcomeLog>());
        services.AddSingleton<SuppressionList>();
        services.AddSingleton<SuppressionLog>();
        services.AddHostedService(sp => sp.GetRequiredService<SuppressionLog>());
        return services;
    }
}
