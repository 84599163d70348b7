using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>Requests that came through a proxy (<c>Front__TrustProxy</c>): believed when a proxy is trusted, refused by a keyless Front otherwise.</summary>
/// <remarks>
/// Behind a reverse proxy on the same host every client's connection comes from loopback, which a keyless Front
/// serves. Such a proxy says who the client is in <c>X-Forwarded-For</c> (or RFC 7239 <c>Forwarded</c>): without a
/// trusted proxy a keyless Front refuses whatever carries them, rather than serve the whole network as if it were
/// this machine. With one, <c>X-Forwarded-For</c> from a loopback proxy becomes the client's address, and the
/// loopback check, the rate limits and the logs see the real client.
/// </remarks>
public static class ProxyHeaders
{
    public static IServiceCollection AddProxyHeaders(this IServiceCollection services)
    {
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<EdgeOptions>>((o, edge) =>
        {
            // Only the proxy's word on the client: the Host stays what the client sent, for AllowedHosts to judge.
            // The default known proxies are loopback's, which is where the proxy this setting is about runs.
            o.ForwardedHeaders = edge.Value.TrustProxy ? ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto : ForwardedHeaders.None;
        });
        return services;
    }

    /// <summary>Why a keyless Front refuses the request, or null.</summary>
    public static string? Refusal(bool keyless, bool trustProxy, bool hasForwarded, bool hasForwardedFor) =>
        !keyless || !(hasForwarded || hasForwardedFor) ? null
        : !trustProxy ? "This request came through a proxy (Forwarded, X-Forwarded-For), so its client may be anywhere: set Front__TrustProxy=true if a proxy on this machine forwards to the Front, or configure API keys (Front__ApiKeys)."
        // ASP.NET Core reads X-Forwarded-For only: a proxy that sends RFC 7239 alone would leave every client looking local.
        : !hasForwardedFor ? "This request came through a proxy that names its client in Forwarded only; this Front reads X-Forwarded-For."
        : null;

    public static WebApplication UseProxyHeaders(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            // Resolved per request, not when the pipeline is built: a wrong setting is reported at start, in one line.
            var keyless = http.RequestServices.GetRequiredService<ApiKeys>().LoopbackOnly;
            var trustProxy = http.RequestServices.GetRequiredService<IOptions<EdgeOptions>>().Value.TrustProxy;
            var headers = http.Request.Headers;
            if (Refusal(keyless, trustProxy, headers.ContainsKey("Forwarded"), headers.ContainsKey(ForwardedHeadersDefaults.XForwardedForHeaderName)) is { } refusal)
            {
                await EdgeProblems.WriteAsync(http, StatusCodes.Status403Forbidden, "Forbidden",
                    $"This Front has no API keys and serves clients on its own machine only. {refusal}");
                return;
            }

            await next(http);
        });
        // Does nothing unless Front__TrustProxy is set (see AddProxyHeaders).
        app.UseForwardedHeaders();
        return app;
    }
}
