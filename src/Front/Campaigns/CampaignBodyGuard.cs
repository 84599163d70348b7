using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Bulk.Front.Campaigns;

/// <summary>A campaign body refused while it streamed in: the field and the reason, as the 400 names them.</summary>
public sealed class CampaignBodyRefusedException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>
/// Follows the campaign body's bytes as they stream in and refuses, before the serializer has buffered or built
/// it, what would only be refused once it had all been read: more recipients than Front__MaxRecipients, more than
/// 50 custom headers, a subject over 998 characters, and any string (text, html or other), number or literal over
/// Front__MaxTemplateBytes.
/// </summary>
/// <remarks>
/// The serializer holds a whole token in memory before it looks at it, and builds every recipient before the
/// validator can count them, so without this a 60 MB text or a million addresses under the body limit cost the
/// Front hundreds of MB before the 400. This is a lexer, not a parser: it follows strings, nesting and the
/// top-level property names, and leaves malformed JSON to the serializer reading the same bytes. On malformed JSON
/// it may refuse first, with its own reason, and it counts recipients and headers as written (a header given twice
/// counts twice); anything else it lets through, the serializer and the validator then judge.
/// </remarks>
internal sealed class CampaignBodyGuard(int maxRecipients, int maxTemplateBytes, int maxDataValuesPerRecipient = int.MaxValue, int maxDataValues = int.MaxValue)
{
    /// <summary>A UTF-16 character is at most 3 UTF-8 bytes: a subject of more bytes than this is over 998 characters.</summary>
    private const int MaxSubjectBytes = 3 * CampaignValidator.MaxSubjectLength;

    /// <summary>"recipients" with every letter escaped (\u0072…) is 60 bytes: a longer property name is none that is watched.</summary>
    private const int MaxWatchedNameBytes = 64;

    private const string Recipients = "recipients";
    private const string Headers = "headers";

    private static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);
    private static readonly SearchValues<byte> LiteralEnd = SearchValues.Create(" \t\r\n\"{}[],:"u8);
    private static readonly SearchValues<byte> StringEnd = SearchValues.Create("\"\\"u8);

    private readonly byte[] name = new byte[MaxWatchedNameBytes];
    private int nameLength;
    private int depth;
    private bool rootIsObject;
    private bool expectName;
    private string? field;
    private string? counted; // the top-level list whose items are being counted: recipients or headers
    private bool expectItem;
    private int items;
    private long literalBytes;
    private bool expectDataValue; // inside a recipient's data, a value (or an object member) may start next
    private int recipientDataValues;
    private long dataValues;

    private bool inString;
    private bool stringIsName;
    private int escape; // 0 none, -1 just after '\', 1 to 4 hex digits of a \u still to come
    private int escaped;
    private long stringBytes;
    private long stringLimit;

    /// <summary>Takes the next bytes of the body; throws <see cref="CampaignBodyRefusedException"/> as soon as they break a limit.</summary>
    public void Observe(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            if (inString)
            {
                i = ReadString(bytes, i);
                continue;
            }

            var b = bytes[i];
            if (Whitespace.Contains(b))
            {
                literalBytes = 0;
                var next = bytes[i..].IndexOfAnyExcept(Whitespace);
                i = next < 0 ? bytes.Length : i + next;
                continue;
            }

            if (expectItem && b is not ((byte)',' or (byte)']' or (byte)'}'))
            {
                expectItem = false;
                CountItem();
            }

            if (expectDataValue && b is not ((byte)',' or (byte)']' or (byte)'}'))
            {
                expectDataValue = false;
                CountDataValue();
            }

            if (LiteralEnd.Contains(b))
            {
                literalBytes = 0;
                Structure(b);
                i++;
                continue;
            }

            // A number or a literal: the serializer holds it whole, so it is held to the same limit as a string.
            var end = bytes[i..].IndexOfAny(LiteralEnd);
            var length = end < 0 ? bytes.Length - i : end;
            literalBytes += length;
            if (literalBytes > maxTemplateBytes)
            {
                throw new CampaignBodyRefusedException(Where(), $"A value is larger than {maxTemplateBytes} bytes (Front__MaxTemplateBytes).");
            }

            i += length;
        }
    }

    private void Structure(byte b)
    {
        switch (b)
        {
            case (byte)'"':
                StartString();
                break;
            case (byte)'{' or (byte)'[':
                depth++;
                // Depth 3 is a recipient object, 4 its data: every member or element from there down is a data value.
                expectDataValue = depth >= 4 && counted == Recipients;
                if (depth == 1)
                {
                    rootIsObject = b == (byte)'{';
                    expectName = rootIsObject;
                }
                else if (depth == 2 && rootIsObject)
                {
                    counted = b == (byte)'[' && Is(Recipients) ? Recipients : b == (byte)'{' && Is(Headers) ? Headers : null;
                    expectItem = counted is not null;
                    items = 0;
                }

                break;
            case (byte)'}' or (byte)']':
                expectDataValue = false;
                if (depth == 2)
                {
                    counted = null;
                    expectItem = false;
                }

                depth = Math.Max(0, depth - 1);
                break;
            case (byte)',':
                expectDataValue = depth >= 4 && counted == Recipients;
                if (depth == 1)
                {
                    expectName = rootIsObject;
                }
                else if (depth == 2 && counted is not null)
                {
                    expectItem = true;
                }

                break;
            case (byte)':':
                if (depth == 1)
                {
                    expectName = false;
                }

                break;
        }
    }

    /// <summary>
    /// Counts the values in recipients' data as the validator does (each member or element, nested ones too): the
    /// serializer builds every one, so a recipient with millions of them costs the Front as much as millions of recipients.
    /// Whatever else a recipient object nests counts too: the serializer skips properties other than email and data,
    /// but only junk has them.
    /// </summary>
    private void CountDataValue()
    {
        dataValues++;
        if (++recipientDataValues > maxDataValuesPerRecipient)
        {
            throw new CampaignBodyRefusedException(string.Create(CultureInfo.InvariantCulture, $"recipients[{items - 1}].data"),
                $"A recipient's data holds at most {maxDataValuesPerRecipient} values (Front__MaxDataValuesPerRecipient).");
        }

        if (dataValues > maxDataValues)
        {
            throw new CampaignBodyRefusedException(Recipients,
                $"The recipients' data hold at most {maxDataValues} values in all (Front__MaxDataValues).");
        }
    }

    private void CountItem()
    {
        items++;
        recipientDataValues = 0;
        if (counted == Recipients && items > maxRecipients)
        {
            throw new CampaignBodyRefusedException(Recipients, $"At most {maxRecipients} recipients per campaign; this one has more.");
        }

        if (counted == Headers && items > CampaignValidator.MaxHeaders)
        {
            throw new CampaignBodyRefusedException(Headers, $"At most {CampaignValidator.MaxHeaders} custom headers; this campaign has more.");
        }
    }

    private void StartString()
    {
        inString = true;
        escape = 0;
        stringBytes = 0;
        stringIsName = depth == 1 && expectName;
        nameLength = 0;
        stringLimit = !stringIsName && depth == 1 && Is("subject") ? MaxSubjectBytes : maxTemplateBytes;
    }

    /// <summary>Reads on in a string from <paramref name="i"/>, counting the bytes it will have once unescaped; returns where it stopped.</summary>
    private int ReadString(ReadOnlySpan<byte> bytes, int i)
    {
        while (i < bytes.Length)
        {
            if (escape == 0)
            {
                var rest = bytes[i..];
                var special = rest.IndexOfAny(StringEnd);
                var run = special < 0 ? rest.Length : special;
                Keep(rest[..run]);
                Count(run);
                i += run;
                if (special < 0)
                {
                    return i;
                }

                Keep(rest.Slice(special, 1));
                i++;
                if (rest[special] == (byte)'"')
                {
                    EndString();
                    return i;
                }

                escape = -1;
            }
            else if (escape == -1)
            {
                var c = bytes[i];
                Keep(bytes.Slice(i, 1));
                i++;
                if (c == (byte)'u')
                {
                    escape = 4;
                    escaped = 0;
                }
                else
                {
                    escape = 0;
                    Count(1);
                }
            }
            else
            {
                Keep(bytes.Slice(i, 1));
                escaped = (escaped * 16) + HexValue(bytes[i]);
                i++;
                if (--escape == 0)
                {
                    // UTF-8 needs 1 to 3 bytes for one \u escape, and a surrogate pair of them is 4 bytes in all.
                    Count(escaped switch { < 0x80 => 1, < 0x800 => 2, >= 0xD800 and <= 0xDFFF => 2, _ => 3 });
                }
            }
        }

        return i;
    }

    private void Count(long unescapedBytes)
    {
        stringBytes += unescapedBytes;
        if (stringBytes <= stringLimit)
        {
            return;
        }

        if (stringIsName)
        {
            throw new CampaignBodyRefusedException(Where(), $"A property name is larger than {maxTemplateBytes} bytes.");
        }

        if (depth == 1 && Is("subject"))
        {
            throw new CampaignBodyRefusedException("subject", $"The subject is longer than {CampaignValidator.MaxSubjectLength} characters.");
        }

        if (depth == 1 && (Is("text") || Is("html")))
        {
            var template = Is("text") ? "text" : "html";
            throw new CampaignBodyRefusedException(template, $"The {template} template is larger than {maxTemplateBytes} bytes (Front__MaxTemplateBytes).");
        }

        throw new CampaignBodyRefusedException(Where(), $"A value is larger than {maxTemplateBytes} bytes (Front__MaxTemplateBytes).");
    }

    /// <summary>Keeps the raw bytes of a top-level property name, up to the longest one watched.</summary>
    private void Keep(ReadOnlySpan<byte> raw)
    {
        if (!stringIsName || nameLength < 0)
        {
            return;
        }

        if (nameLength + raw.Length > name.Length)
        {
            nameLength = -1;
            return;
        }

        raw.CopyTo(name.AsSpan(nameLength));
        nameLength += raw.Length;
    }

    private void EndString()
    {
        inString = false;
        if (stringIsName)
        {
            // The closing quote was kept too.
            field = nameLength < 0 ? null : Unescape(name.AsSpan(0, nameLength - 1));
            stringIsName = false;
        }
    }

    /// <summary>A property name as the serializer matches it, escapes and all.</summary>
    private static string? Unescape(ReadOnlySpan<byte> raw)
    {
        if (!raw.Contains((byte)'\\'))
        {
            return Encoding.UTF8.GetString(raw);
        }

        Span<byte> quoted = stackalloc byte[raw.Length + 2];
        quoted[0] = quoted[^1] = (byte)'"';
        raw.CopyTo(quoted[1..]);
        try
        {
            var reader = new Utf8JsonReader(quoted);
            return reader.Read() ? reader.GetString() : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null; // the serializer refuses it too
        }
    }

    /// <summary>Property names match as the serializer's (case-insensitive) do.</summary>
    private bool Is(string property) => string.Equals(field, property, StringComparison.OrdinalIgnoreCase);

    /// <summary>The field a refusal names: the recipient, the top-level property, or the body itself.</summary>
    private string Where() =>
        counted == Recipients && depth >= 2 && items > 0 ? string.Create(CultureInfo.InvariantCulture, $"recipients[{items - 1}]")
        : depth >= 1 && !stringIsName && field is not null ? field
        : "body";

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => 0, // not JSON: the serializer refuses it
    };
}
