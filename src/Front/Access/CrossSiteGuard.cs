namespace Bulk.Front.Access;

/// <summary>Refuses a browser request that would change something on behalf of a page of another site (403).</summary>
/// <remarks>
/// A keyless Front trusts loopback clients, and a browser on this machine is one for every site it visits: a form
/// posted by any page, or a <c>fetch(…, {mode: 'no-cors'})</c>, reaches it with the browser's own address. Browsers say
/// where such a request comes from: <c>Sec-Fetch-Site</c> (which a page cannot set) or, in older ones, <c>Origin</c>.
/// Reading is left alone: without CORS headers a page of another site cannot read the answer. A request with neither
/// header (curl, a server, a script) is not a browser's on behalf of a page, and is let through.
/// </remarks>
public static class CrossSiteGuard
{
    /// <summary>Why the request is refused, or null when it is the Front's own page's, a reading, or no browser's.</summary>
    /// <param name="host">The request's Host, which a same-origin <c>Origin</c> names.</param>
    public static string? Refusal(string method, string? fetchSite, string? origin, HostString host)
    {
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method))
        {
            return null;
        }

        if (!string.IsNullOrEmpty(fetchSite))
        {
            // "none" is the user's own doing (the address bar, a bookmark); "same-site" is another port or subdomain,
            // another application as far as this Front knows.
            return fetchSite is "same-origin" or "none" ? null : $"Sec-Fetch-Site: {fetchSite}";
        }

        if (string.IsNullOrEmpty(origin))
        {
            return null;
        }

        // Compared by host and port only: a proxy ending TLS in front of the Front changes the scheme, not the names.
        return Uri.TryCreate(origin, UriKind.Absolute, out var uri) && host.HasValue
            && string.Equals(uri.Authority, host.Value, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"Origin: {origin}";
    }

    /// <summary>Lets pages of other sites post to the endpoints of <paramref name="builder"/>: they prove who they are otherwise (a signed token).</summary>
    public static TBuilder AllowCrossSite<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(CrossSiteAllowed.Instance);

    internal static async Task GuardAsync(HttpContext http, RequestDelegate next)
    {
        var request = http.Request;
        var refusal = http.GetEndpoint()?.Metadata.GetMetadata<CrossSiteAllowed>() is null
            ? Refusal(request.Method, request.Headers["Sec-Fetch-Site"].ToString(), request.Headers.Origin.ToString(), request.Host)
            : null;
        if (refusal is null)
        {
            await next(http);
            return;
        }

        await EdgeProblems.WriteAsync(http, StatusCodes.Status403Forbidden, "Cross-site request refused",
            $"A page of another site may not change anything on this Front ({refusal}). Use the Front's own page, or a client that is not a browser.");
    }

    private sealed class CrossSiteAllowed
    {
        public static readonly CrossSiteAllowed Instance = new();
    }
}
