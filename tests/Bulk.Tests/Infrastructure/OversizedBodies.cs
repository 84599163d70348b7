using System.Globalization;
using System.Text;

namespace Bulk.Tests.Infrastructure;

/// <summary>
/// Oversized campaign bodies, generated in 64 KB pieces as they are sent, so that neither a test nor the benchmark
/// holds one in memory. Shared by <c>OversizedInputTests</c> and <c>./bulk bench</c>, so both speak of the same inputs.
/// </summary>
public static class OversizedBodies
{
    public const long HundredMegabytes = 100L * 1024 * 1024;

    private const int PieceSize = 64 * 1024;

    private const string Head = "{'from':'News <news@example.com>',";

    /// <summary>A valid campaign made <paramref name="length"/> bytes long by whitespace between its fields: too big, and for no other reason.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> Padded(long length)
    {
        var start = Json(Head + "'subject':'s','text':'t','recipients':['a@example.org']");
        return Pieces([start], Repeat(" ", length - start.Length - 1), ["}"]);
    }

    /// <summary>A campaign whose subject is <paramref name="characters"/> characters long.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithSubject(int characters) =>
        Pieces([Json(Head + "'text':'t','recipients':['a@example.org'],'subject':'")], Repeat("x", characters), [Json("'}")]);

    /// <summary>A campaign whose text body is <paramref name="bytes"/> bytes long.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithText(long bytes) =>
        Pieces([Json(Head + "'subject':'s','recipients':['a@example.org'],'text':'")], Repeat("x", bytes), [Json("'}")]);

    /// <summary>A campaign to <paramref name="count"/> distinct addresses (about 22 bytes each).</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithRecipients(int count) =>
        Pieces([Json(Head + "'subject':'s','text':'t','recipients':[")], Recipients(count), ["]}"]);

    /// <summary>A campaign to <paramref name="count"/> addresses with <paramref name="values"/> placeholder values each.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithRecipientsAndData(int count, int values)
    {
        var data = string.Join(",", Enumerable.Range(0, values).Select(v => $"'k{v}':'value {v}'"));
        return Pieces([Json(Head + "'subject':'s','text':'t','recipients':[")], Numbered(count, "{{'email':'r{0:D7}@example.org','data':{{" + data + "}}}}"), ["]}"]);
    }

    /// <summary>A campaign with <paramref name="count"/> custom headers (about 15 bytes each).</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithHeaders(int count) =>
        Pieces([Json(Head + "'subject':'s','text':'t','recipients':['a@example.org'],'headers':{")], Numbered(count, "'X-{0:D7}':'v'"), ["}}"]);

    /// <summary>A campaign to one recipient with <paramref name="count"/> placeholder values (about 12 bytes each).</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> WithData(int count) =>
        Pieces([Json(Head + "'subject':'s','text':'t','recipients':[{'email':'a@example.org','data':{")], Numbered(count, "'k{0:D7}':0"), ["}}]}"]);

    /// <summary>A campaign with a property nested <paramref name="depth"/> arrays deep.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> Nested(int depth) =>
        Pieces([Json(Head + "'subject':'s','text':'t','recipients':['a@example.org'],'nested':")], Repeat("[", depth), Repeat("]", depth), ["}"]);

    public static long LengthOf(IEnumerable<ReadOnlyMemory<byte>> pieces) => pieces.Sum(p => (long)p.Length);

    /// <summary>The first <paramref name="bytes"/> bytes of a body: send them under the whole body's Content-Length to see whether the server answers before the end.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> FirstBytes(this IEnumerable<ReadOnlyMemory<byte>> pieces, long bytes)
    {
        foreach (var piece in pieces)
        {
            if (bytes <= 0)
            {
                yield break;
            }

            var take = (int)Math.Min(piece.Length, bytes);
            yield return piece[..take];
            bytes -= take;
        }
    }

    /// <summary>JSON written with ' for " (no value here has an apostrophe), to keep the bodies above readable.</summary>
    private static string Json(string text) => text.Replace('\'', '"');

    private static IEnumerable<string> Recipients(int count) => Numbered(count, "'r{0:D7}@example.org'");

    /// <summary><paramref name="count"/> items of JSON, comma-separated, each the format with its number.</summary>
    private static IEnumerable<string> Numbered(int count, string format)
    {
        var item = Json(format);
        for (var i = 0; i < count; i++)
        {
            yield return (i == 0 ? "" : ",") + string.Format(CultureInfo.InvariantCulture, item, i);
        }
    }

    private static IEnumerable<string> Repeat(string text, long count)
    {
        var block = string.Concat(Enumerable.Repeat(text, PieceSize));
        for (; count >= PieceSize; count -= PieceSize)
        {
            yield return block;
        }

        yield return block[..(int)(count * text.Length)];
    }

    /// <summary>The parts one after the other, read lazily (a spread in a collection expression would build them all at once).</summary>
    private static IEnumerable<ReadOnlyMemory<byte>> Pieces(params IEnumerable<string>[] parts)
    {
        var buffer = new byte[PieceSize];
        var used = 0;
        foreach (var part in parts.SelectMany(p => p))
        {
            var bytes = Encoding.UTF8.GetBytes(part).AsMemory();
            while (bytes.Length > 0)
            {
                var take = Math.Min(bytes.Length, PieceSize - used);
                bytes[..take].CopyTo(buffer.AsMemory(used));
                used += take;
                bytes = bytes[take..];
                if (used == PieceSize)
                {
                    yield return buffer.AsMemory().ToArray();
                    used = 0;
                }
            }
        }

        if (used > 0)
        {
            yield return buffer.AsMemory(0, used).ToArray();
        }
    }
}
