using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

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

    /// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: it reaches the broker and has read both streams too,
    /// and when not, says why (an orchestrator keeps the body of a failed probe in its events).</summary>
    public static RouteGroupBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").AllowAnonymous();
        group.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        group.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteWhyAsync });
        return group;
    }

    /// <summary>"Healthy", or "Unhealthy" followed by a line per check that failed, with its reason.</summary>
    private static Task WriteWhyAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var failed = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy)
            .Select(e => $"\n{e.Key}: {e.Value.Description ?? e.Value.Exception?.Message ?? e.Value.Status.ToString()}");
        return context.Response.WriteAsync(report.Status.ToString() + string.Concat(failed));
    }
}
