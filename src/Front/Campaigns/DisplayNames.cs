using MimeKit;

namespace Bulk.Front.Campaigns;

/// <summary>Display names that show an address other than their mailbox's: refused in <c>from</c> and in the custom
/// headers a mail client shows by name.</summary>
internal static class DisplayNames
{
    /// <summary>An address written in a mailbox's display name that is not the mailbox's own address, or null.</summary>
    /// <remarks>Many mail clients show only the name: <c>"ceo@bank.com" &lt;news@example.com&gt;</c> reads as mail from
    /// ceo@bank.com, which <c>Front__AllowedSenders</c> and DMARC (both about the address) let through. Full-width and
    /// small at signs count as "@"; an encoded name (RFC 2047) is checked decoded.</remarks>
    private static string? OtherAddressInName(MailboxAddress mailbox)
    {
        var name = mailbox.Name;
        if (string.IsNullOrEmpty(name) || name.AsSpan().IndexOfAny(AtSigns) < 0)
        {
            return null;
        }

        foreach (var token in name.Split(NameSeparators, StringSplitOptions.RemoveEmptyEntries))
        {
            var at = token.AsSpan().IndexOfAny(AtSigns);
            if (at <= 0 || !LooksLikeDomain(token.AsSpan(at + 1)))
            {
                continue; // "News @ Example", "Team@Home": an at sign, not an address a reader would take for one
            }

            var address = $"{token[..at]}@{token[(at + 1)..]}";
            if (!string.Equals(address, mailbox.Address, StringComparison.OrdinalIgnoreCase))
            {
                return address;
            }
        }

        return null;
    }

    /// <summary>A domain as a reader sees one: two labels or more (<c>bank.com</c>), the last not empty.</summary>
    private static bool LooksLikeDomain(ReadOnlySpan<char> domain)
    {
        var dot = domain.LastIndexOfAny('.', '\uFF0E', '\u3002');
        return dot > 0 && dot < domain.Length - 1;
    }

    /// <summary>Why <paramref name="mailbox"/> is refused for its display name, or null.</summary>
    public static string? Refusal(MailboxAddress mailbox) => OtherAddressInName(mailbox) is { } other
        ? $"The name '{mailbox.Name}' shows another address ({other}) than its mailbox's own ({mailbox.Address}); many mail clients show only the name."
        : null;

    private static readonly System.Buffers.SearchValues<char> AtSigns = System.Buffers.SearchValues.Create("@\uFF20\uFE6B");

    private static readonly char[] NameSeparators = [' ', '\t', '<', '>', '"', '\'', '(', ')', ',', ';', ':', '[', ']', '\u00A0', '\u3000'];

    /// <summary>Why a Reply-To's value is refused: not a list of mailboxes, or a name that shows another address.</summary>
    public static string? AddressListRefusal(string value, ParserOptions parser)
    {
        if (!InternetAddressList.TryParse(parser, value, out var list) || list.Count == 0)
        {
            return $"'{value}' is not a list of mailboxes, e.g. \"Help <help@example.com>\".";
        }

        foreach (var mailbox in list.Mailboxes)
        {
            if (Refusal(mailbox) is { } refusal)
            {
                return refusal;
            }
        }

        return null;
    }
}
