using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace Bulk.Front.Health;

/// <summary>Liveness and readiness probes, which need no API key.</summary>
public static class HealthApi
{
    public static IServiceCollection AddHealth(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<BrokerHealthCheck>("broker", tags: ["ready"])
            .AddCheck<StreamsCaughtUpHealthCheck>("streams", tags: ["ready"]);
        return services;
    }

    /// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: it reaches the broker and has read both streams too.</summary>
    public static RouteGroupBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").AllowAnonymous();
        group.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        group.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        return group;
    }
}
