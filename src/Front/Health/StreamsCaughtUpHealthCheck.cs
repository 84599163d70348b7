using Bulk.Broker.Outcomes;
using Bulk.Broker.Suppressions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

/// <summary>Ready once the ledger and the suppression list have read their streams up to where they stood at start;
/// while a stream's snapshot cannot be loaded, not ready and saying why.</summary>
public sealed class StreamsCaughtUpHealthCheck(OutcomeLog outcomes, SuppressionLog suppressions) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            outcomes.SnapshotFailure is { } failed ? HealthCheckResult.Unhealthy($"cannot load the outcomes snapshot, trying again: {failed}")
            : suppressions.SnapshotFailure is { } failing ? HealthCheckResult.Unhealthy($"cannot load the suppressions snapshot, trying again: {failing}")
            : !outcomes.StartupReplayed.IsCompleted ? HealthCheckResult.Unhealthy("still reading the outcomes stream")
            : !suppressions.StartupReplayed.IsCompleted ? HealthCheckResult.Unhealthy("still reading the suppressions stream")
            : HealthCheckResult.Healthy());
}
