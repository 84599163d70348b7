using Bulk.Broker;
using Bulk.Front.Broker;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

/// <summary>Ready only while the Front holds (or can open) a connection to the broker.</summary>
public sealed class BrokerHealthCheck(BrokerConnection broker) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await broker.GetAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (BrokerUnavailableException e)
        {
            return HealthCheckResult.Unhealthy(e.Message);
        }
    }
}
