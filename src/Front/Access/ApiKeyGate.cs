using System.Net;
using System.Security.Cryptography;
using System.Text;
using Bulk.Broker.Hosting;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>Decides who may call the Front: a client with a configured API key, or, when there is none, loopback only.</summary>
/// <remarks>
/// A Front nobody configured must not be an open relay for whoever can reach its port, so without keys it answers
/// loopback clients only. Keys are compared as SHA-256 digests with a fixed-time comparison against every key, so
/// neither the time taken nor an early exit tells a caller how much of a key it guessed.
/// </remarks>
public sealed partial class ApiKeyGate
{
    /// <summary>The <see cref="HttpContext.Items"/> entry naming the caller (a key's number, or the loopback address).</summary>
    public const string CallerItem = "bulk.caller";

    private readonly byte[][] digests;
    private readonly string[] demoKeys;
    private readonly ILogger<ApiKeyGate> logger;

    public ApiKeyGate(IOptions<FrontOptions> options, ILogger<ApiKeyGate> logger)
    {
        this.logger = logger;
        var keys = options.Value.AllApiKeys();
        digests = [.. keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)))];
        var configured = options.Value.ApiKeys;
        demoKeys =
        [
            .. Enumerable.Range(0, configured.Count).Where(i => DemoValues.IsDemo(configured[i])).Select(i => $"Front__ApiKeys__{i}"),
            .. keys.Skip(configured.Count).Any(DemoValues.IsDemo) ? ["A key in Front__ApiKeysFile"] : Array.Empty<string>(),
        ];
    }

    /// <summary>No key is configured: only clients on this machine are served.</summary>
    public bool LoopbackOnly => digests.Length == 0;

    /// <summary>Paths anyone may reach: health probes, the page's static files and recipients' unsubscribe links.</summary>
    public static bool IsPublic(PathString path) =>
        path == "/" || path == "/app.js" || path == "/app.css" || path == "/healthz" || path == "/readyz"
        || path.StartsWithSegments("/unsubscribe");

    public void LogMode()
    {
        if (LoopbackOnly)
        {
            LogLoopbackOnly();
        }
        else
        {
            LogKeys(digests.Length);
        }

        foreach (var setting in demoKeys)
        {
            DemoValues.LogDemoValue(logger, setting, "BULK_API_KEY");
        }
    }

    /// <summary>The caller's name for rate limiting, or null with the problem to answer.</summary>
    public (string? Caller, int Status, string Detail) Admit(HttpContext http)
    {
        if (LoopbackOnly)
        {
            return http.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip)
                ? ($"loopback:{ip}", 0, "")
                : (null, StatusCodes.Status403Forbidden,
                    "This Front has no API keys (Front__ApiKeys) and serves clients on its own machine only.");
        }

        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (null, StatusCodes.Status401Unauthorized, "Send an API key as 'Authorization: Bearer <key>'.");
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        var match = -1;
        for (var i = 0; i < digests.Length; i++)
        {
            // No early exit: every key is compared whatever matched before.
            var equal = CryptographicOperations.FixedTimeEquals(presented, digests[i]);
            match = equal ? i : match;
        }

        return match >= 0 ? ($"key:{match}", 0, "") : (null, StatusCodes.Status401Unauthorized, "The API key is not valid.");
    }

    [LoggerMessage(LogLevel.Warning, "No API key is configured (Front__ApiKeys, Front__ApiKeysFile): serving loopback clients only")]
    private partial void LogLoopbackOnly();

    [LoggerMessage(LogLevel.Information, "{Count} API keys configured: every call except health, the page and unsubscribe links needs one")]
    private partial void LogKeys(int count);
}

public static class ApiKeyGateExtensions
{
    /// <summary>Refuses, with problem details, every call the <see cref="ApiKeyGate"/> does not admit.</summary>
    public static IApplicationBuilder UseApiKeys(this WebApplication app)
    {
        // Resolved once started, so that a bad key setting is reported by the start-up validation like any other.
        app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<ApiKeyGate>().LogMode());
        return app.Use(async (http, next) =>
        {
            var gate = http.RequestServices.GetRequiredService<ApiKeyGate>();
            if (ApiKeyGate.IsPublic(http.Request.Path))
            {
                await next(http);
                return;
            }

            var (caller, status, detail) = gate.Admit(http);
            if (caller is not null)
            {
                http.Items[ApiKeyGate.CallerItem] = caller;
                await next(http);
                return;
            }

            http.Response.StatusCode = status;
            if (status == StatusCodes.Status401Unauthorized)
            {
                http.Response.Headers.WWWAuthenticate = "Bearer";
            }

            await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
            {
                HttpContext = http,
                ProblemDetails = { Status = status, Title = status == StatusCodes.Status401Unauthorized ? "Unauthorized" : "Forbidden", Detail = detail },
            });
        });
    }
}
