namespace Bulk.Worker.Rendering;

/// <summary>Whether a link a browser would follow may stay in a mail: its scheme, found as a browser finds it.</summary>
internal static class LinkScheme
{
    /// <summary>What becomes of a link; Undecided while what was seen of it does not show its scheme yet.</summary>
    public enum Verdict { Undecided, Keep, Drop }

    private static readonly string[] SafeSchemes = ["http", "https", "mailto", "tel"];

    /// <summary>Keep for a relative link or one of <see cref="SafeSchemes"/>; Drop for another scheme; Undecided while
    /// <paramref name="value"/> is only the start of a value and the scheme does not show yet.</summary>
    /// <remarks>As a browser reads a URL: character references decoded, then spaces and control characters ignored
    /// (a browser drops tabs and line breaks anywhere, spaces and controls around the URL; ignoring them everywhere only
    /// ever drops more), then letters, digits, "+", "-" and "." up to a ":" are the scheme, in any case.</remarks>
    public static Verdict Judge(ReadOnlySpan<byte> value, bool whole)
    {
        Span<char> scheme = stackalloc char[8];
        var length = 0;
        var i = 0;
        while (i < value.Length)
        {
            int c = value[i];
            if (c == '&')
            {
                var (decoded, used) = Reference(value[i..], whole);
                if (decoded == NeedMore)
                {
                    return Verdict.Undecided;
                }

                if (decoded == Unknown)
                {
                    return Verdict.Drop; // it may stand for anything, a ":" too
                }

                c = decoded;
                i += used;
            }
            else
            {
                i++;
            }

            if (c is <= ' ' or 0x7F)
            {
                continue;
            }

            if (c == ':')
            {
                return length <= scheme.Length && IsSafe(scheme[..length]) ? Verdict.Keep : Verdict.Drop;
            }

            if (c < 0x80 && (char.IsAsciiLetterOrDigit((char)c) || c is '+' or '-' or '.'))
            {
                if (length < scheme.Length)
                {
                    scheme[length] = (char)HtmlLinkStream.Lower((byte)c);
                }

                length++;
                continue;
            }

            return Verdict.Keep; // "/", "?", "#" or any other: no scheme, a link relative to the page
        }

        return whole ? Verdict.Keep : Verdict.Undecided;
    }

    private static bool IsSafe(ReadOnlySpan<char> scheme)
    {
        foreach (var safe in SafeSchemes)
        {
            if (scheme.SequenceEqual(safe))
            {
                return true;
            }
        }

        return false;
    }

    private const int NeedMore = -2;
    private const int Unknown = -1;

    /// <summary>The character a reference at the start of <paramref name="value"/> stands for, and its length.</summary>
    /// <remarks>Only names that stand for a character a scheme is made of, or that ends one, are known; an unknown one
    /// is <see cref="Unknown"/>. A name is matched in any case and with or without its ";": that only ever drops more.</remarks>
    private static (int Char, int Length) Reference(ReadOnlySpan<byte> value, bool whole)
    {
        var i = 1;
        if (i < value.Length && value[i] == '#')
        {
            i++;
            var hex = i < value.Length && value[i] is (byte)'x' or (byte)'X';
            if (hex)
            {
                i++;
            }

            var code = 0L;
            var digits = 0;
            for (; i < value.Length; i++, digits++)
            {
                var d = HexValue(value[i]);
                if (d < 0 || !hex && d > 9)
                {
                    break;
                }

                code = Math.Min(code * (hex ? 16 : 10) + d, 0x110000);
            }

            if (i == value.Length && !whole)
            {
                return (NeedMore, 0);
            }

            if (digits == 0)
            {
                return ('&', 1); // "&#" and no number: the "&" is itself
            }

            if (i < value.Length && value[i] == ';')
            {
                i++;
            }

            return ((int)(code is 0 or >= 0x110000 ? 0xFFFD : code), i);
        }

        var start = i;
        while (i < value.Length && i - start <= 8 && char.IsAsciiLetterOrDigit((char)value[i]))
        {
            i++;
        }

        if (i == value.Length && !whole)
        {
            return (NeedMore, 0);
        }

        if (i == start)
        {
            return ('&', 1); // a lone "&"
        }

        var known = Named(value[start..i]);
        if (known < 0)
        {
            return (Unknown, 0);
        }

        if (i < value.Length && value[i] == ';')
        {
            i++;
        }

        return (known, i);
    }

    private static int Named(ReadOnlySpan<byte> name) => System.Text.Encoding.ASCII.GetString(name).ToLowerInvariant() switch
    {
        "colon" => ':',
        "tab" => '\t',
        "newline" => '\n',
        "period" => '.',
        "plus" => '+',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "sol" => '/',
        "quest" => '?',
        "num" => '#',
        "nbsp" => 0xA0,
        _ => Unknown,
    };

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
