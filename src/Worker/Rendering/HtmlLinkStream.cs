using System.Buffers;
using static Bulk.Worker.Rendering.LinkScheme;

namespace Bulk.Worker.Rendering;

/// <summary>Passes on a rendered html part with every link that would run something (<c>javascript:</c>,
/// <c>vbscript:</c>, <c>data:</c>, any scheme but http, https, mailto and tel) replaced by <c>#</c>.</summary>
/// <remarks>
/// <para>A recipient's value is html-encoded, so it cannot open a tag or an attribute, but it can be the whole of an
/// attribute the template puts it in: <c>&lt;a href="{{ website }}"&gt;</c> with a website of <c>javascript:…</c> from
/// a sign-up form. So the part is read as a browser reads its tags, on the UTF-8 bytes as they are written, and the
/// value of every attribute that takes a URL (<c>href</c>, <c>src</c>, <c>action</c>, …) is checked the way a browser
/// finds its scheme: character references decoded, tabs and line breaks dropped, any case. A relative link, a fragment
/// and the four schemes pass unchanged; anything else, or a value whose scheme cannot be told within its first
/// <see cref="MaxUndecided"/> bytes, becomes <c>#</c> (<see cref="LinkScheme"/>). The whole part is checked, the template's own markup too: which
/// characters came from data is not known here, and a template's script link is no more use in a mail than a recipient's.</para>
/// <para>Text between tags, where nearly all of a part's bytes are, is passed on after a vectorised search for the next
/// <c>&lt;</c>; only a URL's first bytes are held back, until its scheme is known.</para>
/// </remarks>
internal sealed class HtmlLinkStream(Stream inner) : WriteOnlyStream
{
    /// <summary>The most of a URL held back to find its scheme; past it, with still no scheme known, the link is dropped.</summary>
    public const int MaxUndecided = 2048;

    private const int MaxName = 16;

    private static readonly byte[] Neutral = "#"u8.ToArray();

    private static readonly SearchValues<byte> UnquotedEnd = SearchValues.Create(" \t\n\f\r>"u8);

    private static readonly SearchValues<byte> TagNameEnd = SearchValues.Create(" \t\n\f\r/>"u8);

    private static readonly SearchValues<byte> AttributeNameEnd = SearchValues.Create("= \t\n\f\r/>"u8);

    private readonly byte[] name = new byte[MaxName + 1];
    private State current;
    private int nameLength;
    private byte quote;
    private bool url;
    private Verdict verdict;
    private byte[]? held;
    private int heldLength;

    private enum State { Text, TagOpen, TagName, BeforeName, Name, AfterName, BeforeValue, Value, Markup }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var from = 0; // bytes before this are written or dropped
        var i = 0;
        var state = current;
        while (i < buffer.Length)
        {
            var b = buffer[i];
            switch (state)
            {
                case State.Text:
                    var open = buffer[i..].IndexOf((byte)'<');
                    if (open < 0)
                    {
                        i = buffer.Length;
                        continue;
                    }

                    i += open + 1;
                    state = State.TagOpen;
                    continue;
                case State.TagOpen:
                    state = char.IsAsciiLetter((char)b) ? State.TagName : b switch { (byte)'!' or (byte)'/' or (byte)'?' => State.Markup, (byte)'<' => State.TagOpen, _ => State.Text };
                    break;
                case State.TagName:
                    var nameEnd = buffer[i..].IndexOfAny(TagNameEnd);
                    if (nameEnd < 0)
                    {
                        i = buffer.Length;
                        continue;
                    }

                    i += nameEnd;
                    state = buffer[i] == '>' ? State.Text : State.BeforeName;
                    break;
                case State.BeforeName:
                case State.AfterName:
                    if (b == '>')
                    {
                        state = State.Text;
                    }
                    else if (b == '=' && state == State.AfterName)
                    {
                        state = State.BeforeValue;
                    }
                    else if (b == '/')
                    {
                        state = State.BeforeName;
                    }
                    else if (!IsSpace(b))
                    {
                        nameLength = 0;
                        AppendName(b);
                        state = State.Name;
                    }

                    break;
                case State.Name:
                    var more = buffer[i..].IndexOfAny(AttributeNameEnd);
                    foreach (var c in more < 0 ? buffer[i..] : buffer.Slice(i, more))
                    {
                        AppendName(c);
                    }

                    if (more < 0)
                    {
                        i = buffer.Length;
                        continue;
                    }

                    i += more;
                    state = buffer[i] switch
                    {
                        (byte)'=' => State.BeforeValue,
                        (byte)'>' => State.Text,
                        (byte)'/' => State.BeforeName,
                        _ => State.AfterName,
                    };
                    break;
                case State.BeforeValue:
                    if (IsSpace(b))
                    {
                        break;
                    }

                    if (b == '>')
                    {
                        state = State.Text;
                        break;
                    }

                    quote = b is (byte)'"' or (byte)'\'' ? b : (byte)0;
                    state = State.Value;
                    url = IsUrlAttribute();
                    if (quote != 0)
                    {
                        i++; // the quote itself is passed on
                    }

                    if (url)
                    {
                        verdict = Verdict.Undecided;
                        heldLength = 0;
                    }

                    continue;
                case State.Value:
                    var rest = buffer[i..];
                    var end = quote != 0 ? rest.IndexOf(quote) : rest.IndexOfAny(UnquotedEnd);
                    var stop = end < 0 ? buffer.Length : i + end;
                    if (url)
                    {
                        from = Value(buffer, from, i, stop, ended: end >= 0);
                    }

                    i = stop;
                    if (end >= 0)
                    {
                        url = false;
                        state = State.BeforeName;
                        if (quote != 0)
                        {
                            i++; // the closing quote; an unquoted value's end is read as the next name's start
                        }
                    }

                    continue;
                case State.Markup:
                    var close = buffer[i..].IndexOf((byte)'>');
                    if (close < 0)
                    {
                        i = buffer.Length;
                        continue;
                    }

                    i += close;
                    state = State.Text;
                    break;
            }

            i++;
        }

        current = state;
        if (from < buffer.Length)
        {
            inner.Write(buffer[from..]);
        }
    }

    /// <summary>Handles <c>buffer[start..stop]</c>, a piece of a URL attribute's value; returns where passing on resumes.</summary>
    private int Value(ReadOnlySpan<byte> buffer, int from, int start, int stop, bool ended)
    {
        switch (verdict)
        {
            case Verdict.Keep:
                return from;
            case Verdict.Drop:
                return stop;
        }

        if (heldLength == 0)
        {
            // Nearly always the whole value is in this write and its first bytes tell: nothing is held or copied.
            verdict = LinkScheme.Judge(buffer[start..stop], whole: ended);
            if (verdict == Verdict.Keep)
            {
                return from;
            }

            inner.Write(buffer[from..start]);
            if (verdict == Verdict.Drop)
            {
                inner.Write(Neutral);
                return stop;
            }
        }

        held ??= ArrayPool<byte>.Shared.Rent(MaxUndecided);
        var taken = Math.Min(stop - start, MaxUndecided - heldLength);
        buffer.Slice(start, taken).CopyTo(held.AsSpan(heldLength));
        heldLength += taken;
        var full = heldLength == MaxUndecided;
        verdict = LinkScheme.Judge(held.AsSpan(0, heldLength), whole: ended && taken == stop - start);
        if (verdict == Verdict.Undecided && full)
        {
            verdict = Verdict.Drop;
        }

        switch (verdict)
        {
            case Verdict.Keep:
                inner.Write(held.AsSpan(0, heldLength));
                return start + taken;
            case Verdict.Drop:
                inner.Write(Neutral);
                return stop;
            default:
                return stop; // all of it held
        }
    }

    /// <summary>Ends the part: a URL still held back (the part ended inside it) is judged as it is.</summary>
    public override void Complete()
    {
        if (current == State.Value && url && verdict == Verdict.Undecided)
        {
            inner.Write(LinkScheme.Judge(held.AsSpan(0, heldLength), whole: true) == Verdict.Keep ? held.AsSpan(0, heldLength) : Neutral);
            url = false;
        }

        if (held is not null)
        {
            ArrayPool<byte>.Shared.Return(held);
            held = null;
        }
    }

    public override void Flush() => inner.Flush();

    internal static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\f' or (byte)'\r';

    private void AppendName(byte b)
    {
        if (nameLength <= MaxName)
        {
            name[nameLength++] = Lower(b);
        }
    }

    /// <summary>Whether the attribute just named takes a URL a browser or mail client may follow or load (HTML, SVG, old HTML).</summary>
    private bool IsUrlAttribute()
    {
        var n = name.AsSpan(0, nameLength); // a longer name is cut at MaxName + 1: none of these
        return n.Length switch
        {
            3 => n.SequenceEqual("src"u8),
            4 => n.SequenceEqual("href"u8) || n.SequenceEqual("data"u8) || n.SequenceEqual("cite"u8),
            6 => n.SequenceEqual("action"u8) || n.SequenceEqual("poster"u8) || n.SequenceEqual("lowsrc"u8) || n.SequenceEqual("dynsrc"u8)
                 || n.SequenceEqual("usemap"u8),
            8 => n.SequenceEqual("longdesc"u8) || n.SequenceEqual("codebase"u8),
            10 => n.SequenceEqual("formaction"u8) || n.SequenceEqual("xlink:href"u8) || n.SequenceEqual("background"u8),
            _ => false,
        };
    }
}
