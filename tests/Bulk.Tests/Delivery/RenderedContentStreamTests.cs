using System.Text;
using Bulk.Worker.Rendering;

namespace Bulk.Tests.Delivery;

/// <summary>The filters a rendered part passes through on its way to its MIME part.</summary>
public sealed class RenderedContentStreamTests
{
    [Theory]
    [InlineData("X\r.\rY", "X\r\n.\r\nY")]
    [InlineData("a\r\nb\nc\r", "a\r\nb\nc\r\n")]
    [InlineData("\r\r\r\n", "\r\n\r\n\r\n")]
    [InlineData("no line end", "no line end")]
    public void ABareCarriageReturn_BecomesCrlf_WhereverTheWritesAreCut(string text, string expected)
    {
        foreach (var chunk in new[] { int.MaxValue, 1, 2 })
        {
            using var output = new MemoryStream();
            var lines = new BareCarriageReturnStream(output);
            WriteInChunks(lines, Encoding.UTF8.GetBytes(text), chunk);
            lines.Complete();
            Assert.Equal(expected, Encoding.UTF8.GetString(output.ToArray()));
        }
    }

    private static void WriteInChunks(Stream stream, byte[] bytes, int chunk)
    {
        for (var at = 0; at < bytes.Length; at += chunk)
        {
            stream.Write(bytes, at, Math.Min(chunk, bytes.Length - at));
        }
    }
}
