using System.Text;
using Bulk.Worker.Rendering;

namespace Bulk.Tests.Delivery;

/// <summary>The filters a rendered part passes through on its way to its MIME part: bare CRs, and links that would run something.</summary>
public sealed class RenderedContentStreamTests
{
    public static TheoryData<string, string> Links => new()
    {
        { """<a href="javascript:alert(1)">x</a>""", """<a href="#">x</a>""" },
        { """<a href='JaVaScRiPt:alert(1)'>x</a>""", """<a href='#'>x</a>""" },
        { """<a href=javascript:alert(1)>x</a>""", """<a href=#>x</a>""" },
        { """<a href=javascript:alert(1) title=t>x</a>""", """<a href=# title=t>x</a>""" },
        { """<a href="&#106;avascript:alert(1)">""", """<a href="#">""" },
        { """<a href="&#x6A;avascript:alert(1)">""", """<a href="#">""" },
        { """<a href="&#106avascript:alert(1)">""", """<a href="#">""" },
        { """<a href="java&Tab;script:alert(1)">""", """<a href="#">""" },
        { """<a href="java&#x09;script:alert(1)">""", """<a href="#">""" },
        { """<a href="javascript&colon;alert(1)">""", """<a href="#">""" },
        { """<a href="&foo;javascript:alert(1)">""", """<a href="#">""" },
        { "<a href=\" \n\tjava\rscript:alert(1)\">", """<a href="#">""" },
        { """<a href="vbscript:msgbox(1)">""", """<a href="#">""" },
        { """<img src="data:image/svg+xml,&lt;svg onload=alert(1)&gt;">""", """<img src="#">""" },
        { """<svg><a xlink:href="javascript:alert(1)">x</a></svg>""", """<svg><a xlink:href="#">x</a></svg>""" },
        { """<form action="javascript:alert(1)"><button formaction="javascript:alert(2)">""", """<form action="#"><button formaction="#">""" },
        { """<a/href="javascript:alert(1)">""", """<a/href="#">""" },
        { """<a title="x" HREF = "javascript:alert(1)" class=c>""", """<a title="x" HREF = "#" class=c>""" },
        { """<a href="https://example.com/?a=1&amp;b=2">""", """<a href="https://example.com/?a=1&amp;b=2">""" },
        { """<a href="HTTP://example.com/">""", """<a href="HTTP://example.com/">""" },
        { """<a href="mailto:help@example.com?subject=a:b">""", """<a href="mailto:help@example.com?subject=a:b">""" },
        { """<a href="tel:+4930123">""", """<a href="tel:+4930123">""" },
        { """<a href="/p/1?x=a:b">""", """<a href="/p/1?x=a:b">""" },
        { """<a href="#top">""", """<a href="#top">""" },
        { """<a href="page.html">""", """<a href="page.html">""" },
        { """<a href="">""", """<a href="">""" },
        { """<a href="https://example.com/javascript:x">""", """<a href="https://example.com/javascript:x">""" },
        { """<a title="javascript:alert(1)" data-x='javascript:'>javascript:alert(1)</a>""", """<a title="javascript:alert(1)" data-x='javascript:'>javascript:alert(1)</a>""" },
        { """<p>a < b, b > a, <b>bold</b> <!-- c --></p>""", """<p>a < b, b > a, <b>bold</b> <!-- c --></p>""" },
        { """é <a href="https://example.com/é">é</a> <a href="javascript:'é'">é</a>""", """é <a href="https://example.com/é">é</a> <a href="#">é</a>""" },
    };

    [Theory]
    [MemberData(nameof(Links))]
    public void ALinkThatWouldRunSomething_BecomesAFragment_AndEverythingElseIsPassedOnAsItIs(string html, string expected)
    {
        Assert.Equal(expected, ThroughLinks(Encoding.UTF8.GetBytes(html), chunk: int.MaxValue));
    }

    [Theory]
    [MemberData(nameof(Links))]
    public void TheLinkFilter_GivesTheSameWhereverItsWritesAreCut(string html, string expected)
    {
        Assert.Equal(expected, ThroughLinks(Encoding.UTF8.GetBytes(html), chunk: 1));
        Assert.Equal(expected, ThroughLinks(Encoding.UTF8.GetBytes(html), chunk: 3));
    }

    [Fact]
    public void ALongLink_IsKeptWhole_AndALinkWhoseSchemeDoesNotShowWithinTheBytesHeldBack_IsDropped()
    {
        var query = new string('q', 3 * HtmlLinkStream.MaxUndecided);
        var spaces = new string(' ', HtmlLinkStream.MaxUndecided);

        Assert.Equal($"<a href=\"https://example.com/?{query}\">x</a>",
            ThroughLinks(Encoding.UTF8.GetBytes($"<a href=\"https://example.com/?{query}\">x</a>"), chunk: 1000));
        Assert.Equal("<a href=\"#\">x</a>", ThroughLinks(Encoding.UTF8.GetBytes($"<a href=\"{spaces}javascript:alert(1)\">x</a>"), chunk: 1000));
    }

    [Fact]
    public void APartThatEndsInsideALink_IsJudgedOnWhatThereIs()
    {
        Assert.Equal("<a href=\"#", ThroughLinks("<a href=\"javascript:alert(1)"u8.ToArray(), chunk: 4));
        Assert.Equal("<a href=\"/p", ThroughLinks("<a href=\"/p"u8.ToArray(), chunk: 4));
    }

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

    private static string ThroughLinks(byte[] html, int chunk)
    {
        using var output = new MemoryStream();
        var links = new HtmlLinkStream(output);
        WriteInChunks(links, html, chunk);
        links.Complete();
        return Encoding.UTF8.GetString(output.ToArray());
    }

    private static void WriteInChunks(Stream stream, byte[] bytes, int chunk)
    {
        for (var at = 0; at < bytes.Length; at += chunk)
        {
            stream.Write(bytes, at, Math.Min(chunk, bytes.Length - at));
        }
    }
}
