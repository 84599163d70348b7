using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>The senders a campaign's <c>from</c> may use (<c>Front__AllowedSenders</c>): exact addresses and whole domains.</summary>
/// <remarks>Without a list any sender is allowed; with one, a Front cannot be used to send as somebody else's domain.</remarks>
public sealed class AllowedSenders(IOptions<FrontOptions> options)
{
    private readonly HashSet<string> addresses = new(options.Value.AllowedSenders.Where(e => !e.StartsWith('@')), StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> domains = new(options.Value.AllowedSenders.Where(e => e.StartsWith('@')).Select(e => e[1..]), StringComparer.OrdinalIgnoreCase);

    public bool AllowsAny => addresses.Count == 0 && domains.Count == 0;

    /// <summary>The list as configured, for the error that names what is allowed.</summary>
    public string Describe() => string.Join(", ", options.Value.AllowedSenders);

    public bool Allows(string address)
    {
        if (AllowsAny || addresses.Contains(address))
        {
            return true;
        }

        var at = address.LastIndexOf('@');
        return at > 0 && domains.Contains(address[(at + 1)..]);
    }

    public static bool IsValidEntry(string? entry)
    {
        if (string.IsNullOrWhiteSpace(entry) || entry.Any(c => c is <= ' ' or > '~'))
        {
            return false;
        }

        var at = entry.LastIndexOf('@');
        return at >= 0 && at < entry.Length - 1 && entry.IndexOf('@') == at;
    }
}
