using System.Net;

namespace Bulk.Front.Access;

/// <summary>The names a request's <c>Host</c> may give (<c>Front__AllowedHosts</c>): a page reaching this Front by a name of its own is refused.</summary>
/// <remarks>
/// DNS rebinding: a page of evil.example is loaded, then evil.example is made to resolve to 127.0.0.1, and the browser
/// lets that page read whatever "its" server answers, since for the browser it is still the same origin. The Host
/// header still says evil.example, so a Front that knows its own names can tell. An IP address is always accepted:
/// rebinding needs a name, and a page whose origin is one of this machine's addresses is this Front's own.
/// </remarks>
public sealed class AllowedHosts
{
    private readonly HashSet<string> names = new(StringComparer.OrdinalIgnoreCase) { "localhost" };

    /// <param name="listening">The URLs the Front listens on (<c>--urls</c>, <c>ASPNETCORE_URLS</c>), as Kestrel reports them.</param>
    /// <param name="configured">The names <c>Front__AllowedHosts</c> adds; <c>*</c> allows any.</param>
    /// <param name="withKeys">API keys are configured: then a rebinding page gains nothing (it has no key), and a proxy
    /// that passes its own Host on must keep working, so any name is taken unless <paramref name="configured"/> lists some.</param>
    /// <param name="machineName">This machine's host name: a Front listening on every address answers to it too.</param>
    public AllowedHosts(IEnumerable<string> listening, IReadOnlyCollection<string> configured, bool withKeys, string machineName)
    {
        AllowsAny = configured.Contains("*") || (withKeys && configured.Count == 0);
        foreach (var host in listening.Select(HostOf))
        {
            if (host is "+" or "*" or "0.0.0.0" or "[::]" or "::")
            {
                names.Add(machineName);
            }
            else if (host.Length > 0)
            {
                names.Add(host);
            }
        }

        names.UnionWith(configured);
    }

    /// <summary>Any Host is accepted.</summary>
    public bool AllowsAny { get; }

    /// <summary>The names accepted besides IP addresses, for the refusal that lists them.</summary>
    public IEnumerable<string> Names => names.Order(StringComparer.OrdinalIgnoreCase);

    public bool Allows(HostString host)
    {
        // HTTP/1.0 may send no Host; no browser does.
        if (AllowsAny || !host.HasValue)
        {
            return true;
        }

        var name = host.Host;
        return IPAddress.TryParse(name.TrimStart('[').TrimEnd(']'), out _) || names.Contains(name.TrimEnd('.'));
    }

    /// <summary>A host name without port, an IP address, or <c>*</c>.</summary>
    public static bool IsValidEntry(string? entry) =>
        entry == "*" || (!string.IsNullOrEmpty(entry) && entry.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')
            && Uri.CheckHostName(entry) != UriHostNameType.Unknown);

    /// <summary>The host of a listening URL such as <c>http://[::1]:5000</c> or <c>http://+:8080</c>.</summary>
    private static string HostOf(string url)
    {
        var start = url.IndexOf("://", StringComparison.Ordinal) is var s and >= 0 ? s + 3 : 0;
        var rest = url[start..];
        var slash = rest.IndexOf('/');
        var authority = slash >= 0 ? rest[..slash] : rest;
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']');
            return close > 0 ? authority[..(close + 1)] : authority;
        }

        var colon = authority.LastIndexOf(':');
        return colon >= 0 ? authority[..colon] : authority;
    }
}
