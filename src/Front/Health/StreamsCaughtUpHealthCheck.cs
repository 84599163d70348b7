using Bulk.Broker.Outcomes;
using Bulk.Broker.Suppressions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

/// <summary>Ready once the ledger and the suppression list have read their streams up to where they stood at start.</summary>
public sealed class StreamsCaughtUpHealthCheck(OutcomeLog outcomes, SuppressionLog suppressions) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            !outcomes.StartupReplayed.IsCompleted ? HealthCheckResult.Unhealthy("still reading the outcomes stream")
            : !suppressions.StartupReplayed.IsCompleted ? HealthCheckResult.Unhealthy("still reading the suppressions stream")
            : HealthCheckResult.Healthy());
}
