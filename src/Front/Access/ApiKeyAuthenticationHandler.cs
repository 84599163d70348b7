using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>Authenticates a caller by its API key (<c>Authorization: Bearer</c>) or, when no key is configured, by its being on this machine.</summary>
/// <remarks>
/// The caller's name, a key's number or the loopback address, is what the campaign rate limit counts by. A key's
/// caller carries its tenant (<see cref="Tenants"/>); an admin key's, and every caller of a Front without keys, the
/// admin role.
/// </remarks>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggers, UrlEncoder encoder, ApiKeys keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggers, encoder)
{
    public const string SchemeName = "ApiKey";

    private const string Bearer = "Bearer ";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        // A wrong key is no result rather than a failure, which the base class would log at Information for every call.
        Claim[]? claims = keys.LoopbackOnly
            ? LoopbackCaller() is { } local ? [new Claim(ClaimTypes.Name, local), new Claim(ClaimTypes.Role, Tenants.AdminRole)] : null
            : PresentedKey() is { } presented && keys.Find(presented) is { } key
                ? [
                    new Claim(ClaimTypes.Name, $"key:{key.Number}"),
                    new Claim(IdempotencyScope.ClaimType, IdempotencyScope.OfApiKey(presented)),
                    .. key.Admin ? [new Claim(ClaimTypes.Role, Tenants.AdminRole)] : Array.Empty<Claim>(),
                ]
                : null;
        if (claims is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(
            new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (keys.LoopbackOnly)
        {
            // No key would help a client elsewhere: it is refused, not asked for one.
            return WriteProblemAsync(StatusCodes.Status403Forbidden, "Forbidden",
                "This Front has no API keys (Front__ApiKeys) and serves clients on its own machine only.");
        }

        Response.Headers.WWWAuthenticate = "Bearer";
        return WriteProblemAsync(StatusCodes.Status401Unauthorized, "Unauthorized",
            PresentedKey() is null ? "Send an API key as 'Authorization: Bearer <key>'." : "The API key is not valid.");
    }

    /// <summary>A key that is not an admin key asked for what only one may see (the suppression list, the dead letters).</summary>
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(StatusCodes.Status403Forbidden, "Admin key needed",
            "This needs an admin key (Front__AdminKeys): an API key sees and steers its own campaigns only.");

    private string? LoopbackCaller() =>
        Context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip) ? $"loopback:{ip}" : null;

    private string? PresentedKey()
    {
        var header = Request.Headers.Authorization.ToString();
        return header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) ? header[Bearer.Length..].Trim() : null;
    }

    private Task WriteProblemAsync(int status, string title, string detail)
    {
        Response.StatusCode = status;
        return Context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        }).AsTask();
    }
}
