using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bulk.Front.Access;

/// <summary>Who may call the Front and how often: API keys, allowed senders, the campaign rate limit.</summary>
public static class AccessRegistration
{
    public static IHostApplicationBuilder AddAccess(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiKeys>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ApiKeys>());
        // AddAuthentication() without the data protection it brings for cookies: that would write a key ring to the
        // home directory at every start (and warn about it in a container), for a Front that protects no data.
        builder.Services.AddAuthenticationCore(o => o.DefaultScheme = ApiKeyAuthenticationHandler.SchemeName);
        builder.Services.AddWebEncoders();
        builder.Services.TryAddSingleton(TimeProvider.System);
        new AuthenticationBuilder(builder.Services)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        // The base handler says "challenged" at Information for every refused call: a caller could fill the log with it.
        builder.Logging.AddFilter(typeof(ApiKeyAuthenticationHandler).FullName, LogLevel.Warning);
        // Groups say what they need; whatever says nothing (an unknown path, a method a path does not take) needs a caller too.
        builder.Services.AddAuthorization(o =>
        {
            o.FallbackPolicy = o.DefaultPolicy;
            o.AddPolicy(Tenants.AdminPolicy, p => p.RequireAuthenticatedUser().RequireRole(Tenants.AdminRole));
        });
        builder.Services.AddSingleton<AllowedSenders>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AllowedSenders>());
        var perMinute = builder.Configuration.GetValue<int?>($"{FrontOptions.Section}:CampaignsPerMinute") ?? new FrontOptions().CampaignsPerMinute;
        builder.Services.AddCampaignRateLimit(Math.Max(0, perMinute));
        return builder;
    }

    public static WebApplication UseAccess(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        // After authorization: a caller without a key is answered 401, not counted, and each caller has its own bucket.
        app.UseRateLimiter();
        return app;
    }
}
