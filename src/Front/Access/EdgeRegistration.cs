using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>
/// What the Front checks before it looks for a caller: the security headers, the proxy a request came through, the
/// name it was sent to, the site of the page that sent it, and how many wrong keys its client tried.
/// </summary>
public static class EdgeRegistration
{
    public static IHostApplicationBuilder AddEdge(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<EdgeOptions>().BindConfiguration(FrontOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) => options.ReadListSettings(configuration))
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddProxyHeaders();
        builder.Services.AddSingleton<WrongKeyThrottle>();
        return builder;
    }

    /// <summary>Before <see cref="AccessRegistration.UseAccess"/>: each refusal here is made before any key is looked at.</summary>
    public static WebApplication UseEdge(this WebApplication app)
    {
        app.Use(SecurityHeaders.AddAsync);
        app.UseProxyHeaders();
        app.Use(HostCheck(app));
        app.Use(CrossSiteGuard.GuardAsync);
        app.Use((http, next) => http.RequestServices.GetRequiredService<WrongKeyThrottle>().ThrottleAsync(http, next));
        return app;
    }

    private static Func<HttpContext, RequestDelegate, Task> HostCheck(WebApplication app)
    {
        // The names are known once Kestrel listens (a port of 0 or a URL from the environment): read at the first request.
        var hosts = new Lazy<AllowedHosts>(() => new AllowedHosts(
            app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [],
            app.Services.GetRequiredService<IOptions<EdgeOptions>>().Value.AllowedHosts,
            withKeys: !app.Services.GetRequiredService<ApiKeys>().LoopbackOnly,
            System.Net.Dns.GetHostName()));
        return async (http, next) =>
        {
            if (hosts.Value.Allows(http.Request.Host))
            {
                await next(http);
                return;
            }

            await EdgeProblems.WriteAsync(http, StatusCodes.Status400BadRequest, "Unknown host",
                $"This Front answers to {string.Join(", ", hosts.Value.Names)} and its IP addresses, not to '{http.Request.Host.Host}'. " +
                "Add the name to Front__AllowedHosts if it is the Front's.");
        };
    }
}
