using System.Reflection;

namespace Bulk.Front.Page;

/// <summary>Serves the browser page at <c>/</c>: three files embedded in the Front, no build step, no CDN.</summary>
public static class PageApi
{
    private static readonly (string Path, string Resource, string ContentType)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "app.css", "text/css; charset=utf-8"),
    ];

    public static RouteGroupBuilder MapPage(this IEndpointRouteBuilder app)
    {
        // Public: the page asks for an API key itself, when the first call it makes is refused.
        var group = app.MapGroup("").AllowAnonymous().ExcludeFromDescription();
        var assembly = typeof(PageApi).Assembly;
        foreach (var (path, resource, contentType) in Files)
        {
            var content = Read(assembly, resource);
            group.MapGet(path, () => TypedResults.Bytes(content, contentType));
        }

        return group;
    }

    private static byte[] Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream($"Bulk.Front.Page.{name}")
            ?? throw new InvalidOperationException($"the page file {name} is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
