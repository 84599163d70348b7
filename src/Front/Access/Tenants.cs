using System.Security.Claims;
using Bulk.Broker.Outcomes;

namespace Bulk.Front.Access;

/// <summary>API keys are tenants: a key sees and steers its own campaigns; an admin key also what all of them share.</summary>
/// <remarks>
/// A campaign's tenant is the digest <see cref="IdempotencyScope.OfApiKey"/> gives its key, recorded on its
/// <c>accepted</c> entry: every Front agrees on it whatever order its keys are listed in, and the stream holds no key.
/// Without keys every caller is on this machine and is the admin, as before tenants.
/// </remarks>
public static class Tenants
{
    /// <summary>The role of an admin key's caller, and of every caller of a Front without keys.</summary>
    public const string AdminRole = "bulk:admin";

    /// <summary>The authorization policy of what only an admin may do.</summary>
    public const string AdminPolicy = "admin";

    /// <summary>The tenant a campaign the caller posts belongs to; null without keys.</summary>
    public static string? Of(ClaimsPrincipal user) => IdempotencyScope.Of(user) is { Length: > 0 } tenant ? tenant : null;

    /// <summary>The campaigns the caller sees: every one for an admin, else its own.</summary>
    public static TenantView ViewOf(ClaimsPrincipal user) =>
        user.IsInRole(AdminRole) ? TenantView.Everyone : TenantView.Of(IdempotencyScope.Of(user));

    /// <summary>Puts a route group behind an admin key; any other key is answered 403 (these are not a tenant's to see).</summary>
    public static RouteGroupBuilder RequireAdminKey(this RouteGroupBuilder group) => group.RequireAuthorization(AdminPolicy);

    /// <summary>Puts an endpoint behind an admin key.</summary>
    public static RouteHandlerBuilder RequireAdminKey(this RouteHandlerBuilder endpoint) =>
        endpoint.RequireAuthorization(AdminPolicy).ProducesProblem(StatusCodes.Status403Forbidden);
}
