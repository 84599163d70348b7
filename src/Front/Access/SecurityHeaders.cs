using Bulk.Front.Reference;

namespace Bulk.Front.Access;

/// <summary>Headers every answer carries: no framing, no sniffing, no referrer, and a content policy of this Front alone.</summary>
/// <remarks>
/// <c>frame-ancestors 'none'</c> keeps the page, the reference and the unsubscribe pages out of other sites' frames
/// (clickjacking). <c>no-referrer</c>: an unsubscribe URL carries a recipient's address, which must not follow a link out.
/// Set when the answer starts, so that the error pages written after an exception carry them too.
/// </remarks>
public static class SecurityHeaders
{
    /// <summary>The page and every other answer: its own scripts and styles only, forms posted only to itself.</summary>
    public const string Policy =
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>
    /// The reference page: Scalar starts itself from an inline module script, styles its components inline and
    /// draws icons from data: URLs. Still nothing from elsewhere, and no framing.
    /// </summary>
    public const string ReferencePolicy =
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
        "font-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    internal static Task AddAsync(HttpContext http, RequestDelegate next)
    {
        http.Response.OnStarting(static state =>
        {
            var http = (HttpContext)state;
            var headers = http.Response.Headers;
            headers.ContentSecurityPolicy = http.Request.Path.StartsWithSegments(ReferenceApi.PagePath) ? ReferencePolicy : Policy;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            return Task.CompletedTask;
        }, http);
        return next(http);
    }
}
