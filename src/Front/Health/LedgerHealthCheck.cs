using Bulk.Contracts;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

/// <summary>Ready once the ledger has read the outcomes stream up to where it stood when the Front started.</summary>
public sealed class LedgerHealthCheck(OutcomeLog outcomes) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(outcomes.CaughtUp.IsCompleted
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("still reading the outcomes stream"));
}
