using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

public static class HealthApi
{
    /// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: it can reach the broker too.</summary>
    public static RouteGroupBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        // Probes carry no key.
        var group = app.MapGroup("").AllowAnonymous();
        group.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        group.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        return group;
    }
}
