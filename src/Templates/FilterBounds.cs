using Fluid;
using Fluid.Values;

namespace Bulk.Templates;

/// <summary>The most each filter Fluid knows can build: characters and list items, computed from its input and
/// arguments before it runs, without building anything.</summary>
/// <remarks>
/// A bound may be above what the filter really builds (an escape counts every character that could grow as growing by
/// the most it can), never below. A filter that is not here is not offered to templates (see
/// <see cref="LiquidSandbox"/>): a Fluid upgrade that adds one adds it here first.
/// </remarks>
internal static class FilterBounds
{
    /// <summary>What a number, a boolean or a date may print as.</summary>
    private const long Scalar = 64;

    /// <summary>Beyond this a sum of lengths is refused anyway; counting stops there rather than overflowing.</summary>
    private const long Enough = 1L << 40;

    public readonly record struct Size(long Chars, long Items);

    /// <param name="maxText">The most characters a value other than a string may have before it is made text to be measured.</param>
    public delegate Size Bound(FluidValue input, FilterArguments arguments, int maxText);

    private static readonly Bound Nothing = (_, _, _) => default;
    private static readonly Bound SameText = (input, arguments, max) => new(Chars(input) + ArgumentChars(arguments), 0);
    private static readonly Bound SameList = (input, _, max) => new(Scalar, Items(input));
    private static readonly Bound Number = (_, _, _) => new(Scalar, 0);
    private static readonly Bound Digest = (input, arguments, _) => new((2 * Scalar) + (2 * (Chars(input) + ArgumentChars(arguments))), 0);

    private static readonly Dictionary<string, Bound> Bounds = new(StringComparer.Ordinal)
    {
        // Strings that grow.
        ["append"] = (input, arguments, max) => new(Chars(input) + Chars(arguments.At(0)), 0),
        ["prepend"] = (input, arguments, max) => new(Chars(input) + Chars(arguments.At(0)), 0),
        ["replace"] = Replace,
        ["replace_first"] = (input, arguments, max) => new(Chars(input) + Chars(arguments.At(1)), 0),
        ["replace_last"] = (input, arguments, max) => new(Chars(input) + Chars(arguments.At(1)), 0),
        ["newline_to_br"] = (input, _, max) => new(Grown(input, "\r\n", 6, max), 0),
        // HTML-encoding also writes a character past ASCII as a number: "&#233;" for "é".
        ["escape"] = (input, _, max) => new(Grown(input, "<>&\"'", 5, max, beyondAscii: true), 0),
        ["escape_once"] = (input, _, max) => new(Grown(input, "<>&\"'", 5, max, beyondAscii: true), 0),
        // A character outside ASCII is up to three UTF-8 bytes of three characters each.
        ["url_encode"] = (input, _, max) => new(Grown(input, null, 8, max) + (2 * Chars(input)), 0),
        ["json"] = (input, _, max) => new(Json(input, 0, max), 0),
        ["join"] = Join,
        ["split"] = Split,
        ["concat"] = (input, arguments, max) => new(Scalar, Items(input) + Items(arguments.At(0))),
        ["format_string"] = FormatString,
        ["format_number"] = (input, arguments, max) => new(NumberFormatChars(Text(arguments.At(0), max)), 0),
        // Base64 makes four characters of three UTF-8 bytes, and a character is up to three bytes.
        ["base64_encode"] = (input, _, _) => new((4 * Chars(input)) + 4, 0),
        ["base64_url_safe_encode"] = (input, _, _) => new((4 * Chars(input)) + 4, 0),
        ["date"] = (input, arguments, max) => new(DateFormatChars(Text(arguments.At(0), max)), 0),
        ["format_date"] = (input, arguments, max) => new(DateFormatChars(Text(arguments.At(0), max)), 0),

        // Strings no longer than their input (and arguments: an ellipsis, say).
        ["capitalize"] = SameText, ["downcase"] = SameText, ["upcase"] = SameText,
        ["lstrip"] = SameText, ["rstrip"] = SameText, ["strip"] = SameText, ["strip_newlines"] = SameText,
        ["strip_html"] = SameText, ["remove"] = SameText, ["remove_first"] = SameText, ["remove_last"] = SameText,
        ["slice"] = (input, arguments, max) => input is ArrayValue ? new(Scalar, Items(input)) : SameText(input, arguments, max),
        ["truncate"] = SameText, ["truncatewords"] = SameText, ["url_decode"] = SameText,
        ["base64_decode"] = SameText, ["base64_url_safe_decode"] = SameText,
        // A digest is short; the input is made UTF-8 bytes on the way.
        ["md5"] = Digest, ["sha1"] = Digest, ["sha256"] = Digest, ["hmac_sha1"] = Digest, ["hmac_sha256"] = Digest,
        ["handle"] = SameText, ["handleize"] = SameText, ["raw"] = SameText,

        // Lists no longer than their input; single items and numbers.
        ["first"] = Number, ["last"] = Number, ["size"] = Number, ["sum"] = SameList, ["map"] = SameList,
        // A string reversed is a list of its characters.
        ["reverse"] = (input, _, _) => input is StringValue ? new(Chars(input), Chars(input)) : new(Scalar, Items(input)),
        ["sort"] = SameList, ["sort_natural"] = SameList, ["uniq"] = SameList, ["compact"] = SameList,
        ["where"] = SameList, ["reject"] = SameList, ["find"] = Number, ["find_index"] = Number, ["has"] = Number,
        ["default"] = Nothing, ["time_zone"] = Number,
        ["abs"] = Number, ["at_least"] = Number, ["at_most"] = Number, ["ceil"] = Number, ["divided_by"] = Number,
        ["floor"] = Number, ["minus"] = Number, ["modulo"] = Number, ["plus"] = Number, ["round"] = Number, ["times"] = Number,
    };

    public static Bound? Of(string filter) => Bounds.GetValueOrDefault(filter);

    /// <summary>The characters <paramref name="value"/> is as text, counted without making it text.</summary>
    public static long Chars(FluidValue value)
    {
        switch (value)
        {
            case StringValue s:
                return s.ToStringValue().Length;
            case ArrayValue a:
                long sum = 0;
                foreach (var item in a.Values)
                {
                    sum += Chars(item);
                    if (sum > Enough)
                    {
                        break;
                    }
                }

                return sum;
            case NilValue:
                return 0;
            default:
                // Numbers, booleans, dates; an object from a recipient's data prints as nothing of its size.
                return Scalar;
        }
    }

    public static long Items(FluidValue value) => value switch
    {
        ArrayValue a => a.Values.Count,
        NilValue => 0,
        _ => 1,
    };

    private static long ArgumentChars(FilterArguments arguments)
    {
        long sum = 0;
        for (var i = 0; i < arguments.Count; i++)
        {
            sum += Chars(arguments.At(i));
        }

        foreach (var name in arguments.Names)
        {
            sum += Chars(arguments[name]);
        }

        return sum;
    }

    /// <summary>A value as text, to be measured: a string as it is; a list only when its text is no longer than one value may be.</summary>
    /// <exception cref="TemplateRenderException">The list's text is longer: whatever the filter, Fluid would have made that text.</exception>
    private static string Text(FluidValue value, int maxText) => value is StringValue s
        ? s.ToStringValue()
        : Chars(value) <= maxText
            ? value.ToStringValue()
            : throw new TemplateRenderException($"a value grew past {maxText} characters (Templates__MaxOutputChars)");

    private static Size Replace(FluidValue input, FilterArguments arguments, int max)
    {
        var length = Chars(input);
        var search = Text(arguments.At(0), max);
        var with = Chars(arguments.At(1));
        if (search.Length == 0)
        {
            // Fluid inserts the replacement between every character and at both ends.
            return new(length + (with * (length + 1)), 0);
        }

        return with <= search.Length
            ? new(length, 0)
            : new(length + (Count(Text(input, max), search) * (with - search.Length)), 0);
    }

    private static Size Join(FluidValue input, FilterArguments arguments, int max)
    {
        var separator = arguments.Count > 0 ? Chars(arguments.At(0)) : 1;
        var items = Items(input);
        return new(Chars(input) + (Math.Max(0, items - 1) * separator), 0);
    }

    private static Size Split(FluidValue input, FilterArguments arguments, int max)
    {
        var length = Chars(input);
        var separator = Text(arguments.At(0), max);
        var items = separator.Length == 0 ? length : Count(Text(input, max), separator) + 1;
        return new(length, items);
    }

    /// <summary><c>string.Format</c>: each placeholder prints at most its widest argument, padded or formatted to the
    /// largest number the format holds (an alignment or a precision), or a date format as wide as the whole format.</summary>
    private static Size FormatString(FluidValue input, FilterArguments arguments, int max)
    {
        var format = Text(input, max);
        var placeholders = format.AsSpan().Count('{');
        long widest = 0;
        for (var i = 0; i < arguments.Count; i++)
        {
            widest = Math.Max(widest, Chars(arguments.At(i)));
        }

        return new(format.Length + (placeholders * (widest + (2 * LargestNumber(format)) + DateFormatChars(format))), 0);
    }

    /// <summary>A .NET number format: a standard one ("N2", "F999999") prints about its precision in digits and group
    /// separators; a custom one about its own length.</summary>
    private static long NumberFormatChars(string format) => (2 * LargestNumber(format)) + (4L * format.Length) + 128;

    /// <summary>A date format, strftime's or .NET's: a directive prints a name of up to some twenty characters, or pads to a width it gives.</summary>
    private static long DateFormatChars(string format) => (32L * format.Length) + LargestNumber(format) + 128;

    /// <summary>The largest run of digits in <paramref name="format"/> read as a number (a width or a precision), capped at <see cref="Enough"/>.</summary>
    private static long LargestNumber(string format)
    {
        long largest = 0, current = 0;
        foreach (var c in format)
        {
            current = char.IsAsciiDigit(c) ? Math.Min(Enough, (current * 10) + (c - '0')) : 0;
            largest = Math.Max(largest, current);
        }

        return largest;
    }

    /// <summary>The input's length if each character of <paramref name="growing"/> (each outside printable ASCII when
    /// null, and also when <paramref name="beyondAscii"/>) grew by <paramref name="by"/>.</summary>
    private static long Grown(FluidValue input, string? growing, int by, int max, bool beyondAscii = false)
    {
        var length = Chars(input);
        var text = Text(input, max).AsSpan();
        var count = growing is null ? text.Length - CountPrintableAscii(text) : text.IndexOfAny(growing) < 0 ? 0 : CountAny(text, growing);
        if (growing is not null && beyondAscii)
        {
            count += text.Length - CountPrintableAscii(text);
        }

        return length + ((long)count * by);
    }

    private static long Json(FluidValue value, int depth, int max) => value switch
    {
        // Escaped as \uXXXX at worst, in quotes.
        StringValue s => 2 + Grown(s, null, 5, max) + (5L * CountAny(s.ToStringValue(), "\"\\<>&'+`")),
        // Never shorter than the list's text: one that is too long is refused without looking at each item.
        ArrayValue a when Chars(a) > max => Chars(a),
        ArrayValue a when depth < 64 => 2 + a.Values.Sum(item => Json(item, depth + 1, max) + 1),
        // An object can only come from a recipient's data, which the Front bounds; its JSON is about its size.
        _ => Scalar + (6 * Chars(value)),
    };

    private static long Count(string text, string search)
    {
        long count = 0;
        for (var at = text.IndexOf(search, StringComparison.Ordinal); at >= 0; at = text.IndexOf(search, at + search.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static int CountAny(ReadOnlySpan<char> text, string chars)
    {
        var count = 0;
        foreach (var c in text)
        {
            if (chars.Contains(c, StringComparison.Ordinal))
            {
                count++;
            }
        }

        return count;
    }

    private static int CountPrintableAscii(ReadOnlySpan<char> text)
    {
        var count = 0;
        foreach (var c in text)
        {
            if (c is >= ' ' and <= '~')
            {
                count++;
            }
        }

        return count;
    }
}
