namespace Bulk.Front.Access;

/// <summary>Puts a route group behind the API keys, and says in its description what a caller without one is answered.</summary>
public static class ApiKeyRequirement
{
    /// <summary>
    /// Needs a caller (<see cref="ApiKeyAuthenticationHandler"/>): 401 without a valid key; 403 from a client elsewhere
    /// when no key is configured and only loopback clients are served.
    /// </summary>
    public static RouteGroupBuilder RequireApiKey(this RouteGroupBuilder group) => group
        .RequireAuthorization()
        .ProducesProblem(StatusCodes.Status401Unauthorized)
        .ProducesProblem(StatusCodes.Status403Forbidden);
}
