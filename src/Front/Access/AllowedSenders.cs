using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>The senders a campaign's <c>from</c> and <c>bounce</c> may use (<c>Front__AllowedSenders</c>): exact addresses and whole domains.</summary>
/// <remarks>
/// Without a list any sender is allowed; with one, a Front cannot be used to send as somebody else's domain, neither in
/// From nor in the envelope sender (MAIL FROM) that SPF checks and bounces go to.
/// </remarks>
public sealed partial class AllowedSenders(IOptions<FrontOptions> options, ILogger<AllowedSenders> logger) : IHostedService
{
    private readonly HashSet<string> addresses = new(options.Value.AllowedSenders.Where(e => !e.StartsWith('@')), StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> domains = new(options.Value.AllowedSenders.Where(e => e.StartsWith('@')).Select(e => e[1..]), StringComparer.OrdinalIgnoreCase);

    public bool AllowsAny => addresses.Count == 0 && domains.Count == 0;

    /// <summary>What a refusal says: the refused addresses only. The list is the operator's; a caller learns no other sender from it.</summary>
    public static string RefusalDetail(string from, string? bounce, IReadOnlyDictionary<string, string[]> refusals)
    {
        var refused = new[] { refusals.ContainsKey("from") ? from : null, refusals.ContainsKey("bounce") ? bounce : null }
            .OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase).Select(a => $"'{a}'");
        return $"This Front may not send as {string.Join(" or ", refused)} (Front__AllowedSenders).";
    }

    public bool Allows(string address)
    {
        if (AllowsAny || addresses.Contains(address))
        {
            return true;
        }

        var at = address.LastIndexOf('@');
        return at > 0 && domains.Contains(address[(at + 1)..]);
    }

    /// <summary>Each field of a campaign whose address is not allowed, with why; empty when both are.</summary>
    /// <param name="bounce">The envelope sender when the campaign gives one (with VERP, the address each recipient's is made from).</param>
    public Dictionary<string, string[]> Refusals(string from, string? bounce)
    {
        var refusals = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!Allows(from))
        {
            refusals["from"] = [$"'{from}' is not an allowed sender."];
        }

        if (bounce is not null && !Allows(bounce))
        {
            refusals["bounce"] = [$"'{bounce}' is not an allowed sender."];
        }

        return refusals;
    }

    /// <summary>Says at start which senders are allowed: a list that was meant but not read would otherwise go unnoticed.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (AllowsAny)
        {
            LogAnySender();
        }
        else
        {
            LogAllowed(string.Join(", ", options.Value.AllowedSenders));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Information, "No allowed senders configured (Front__AllowedSenders): campaigns may be sent from any address")]
    private partial void LogAnySender();

    [LoggerMessage(LogLevel.Information, "Campaigns may be sent only from {Senders} (Front__AllowedSenders)")]
    private partial void LogAllowed(string senders);

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
