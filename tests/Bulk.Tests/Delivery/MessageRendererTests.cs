using System.Text.Json;
using Bulk.Broker.Suppressions;
using Bulk.Contracts;
using Bulk.Worker.Rendering;
using MimeKit;

namespace Bulk.Tests.Delivery;

public sealed class MessageRendererTests
{
    /// <summary>Unsubscribe settings for renderers built by hand in tests.</summary>
    internal static readonly Microsoft.Extensions.Options.IOptions<UnsubscribeOptions> Unsubscribe = Microsoft.Extensions.Options.Options.Create(new UnsubscribeOptions
    {
        Secret = Infrastructure.BulkSystem.UnsubscribeSecret,
        BaseUrl = "https://mail.example.com/",
        Mailto = "unsubscribe@example.com",
    });

    internal static readonly Bulk.Templates.LiquidSandbox Sandbox = new(new Bulk.Templates.TemplateLimits());

    /// <summary>A signer without a DKIM key, as a Worker without <c>Dkim__*</c> has: it leaves messages as they are.</summary>
    internal static readonly MessageSigner Unsigned =
        new(Microsoft.Extensions.Options.Options.Create(new DkimOptions()), Microsoft.Extensions.Logging.Abstractions.NullLogger<MessageSigner>.Instance);

    private readonly MessageRenderer renderer = new(Unsubscribe, Unsigned, Sandbox);

    private static JobRecipient Recipient(string email, string dataJson) =>
        new(7, email, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(dataJson));

    [Fact]
    public void ATextAndHtmlCampaign_IsMultipartAlternative_WithEachPartFilledFromTheRecipient()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("News <news@example.com>", "Hi {{ name }}", "Text {{ name }}", "<b>{{ name }}</b>"));

        var message = renderer.Render(campaign, Recipient("bea@example.org", """{"name":"Bea"}"""));

        var alternative = Assert.IsType<MultipartAlternative>(message.Body);
        Assert.Equal(2, alternative.Count);
        Assert.Equal("Hi Bea", message.Subject);
        Assert.Equal("Text Bea", message.TextBody);
        Assert.Equal("<b>Bea</b>", message.HtmlBody);
        Assert.Equal("bea@example.org", ((MailboxAddress)message.To.Single()).Address);
        Assert.Equal("news@example.com", ((MailboxAddress)message.From.Single()).Address);
    }

    [Fact]
    public void AMessageThatRunsOutOfTimeOnce_IsRenderedAgain_AndItsRecipientDoesNotFail()
    {
        // The first two readings of the clock (the budget's start and the first check) are 2 s apart: over the 1 s budget.
        var stalled = new MessageRenderer(Unsubscribe, Unsigned, new Bulk.Templates.LiquidSandbox(new Bulk.Templates.TemplateLimits(), new Infrastructure.StallingClock(2)));
        var campaign = stalled.Compile("c1", new MessageTemplate("News <news@example.com>", "Hi {{ name }}", "Text {{ name }}", "<b>{{ name }}</b>"));

        var message = stalled.Render(campaign, Recipient("bea@example.org", """{"name":"Bea"}"""));

        Assert.Equal(("Hi Bea", "Text Bea", "<b>Bea</b>"), (message.Subject, message.TextBody, message.HtmlBody));
    }

    [Fact]
    public void AMessageThatRunsOutOfTimeTwice_FailsItsRecipient_NamingTheSetting()
    {
        var stalled = new MessageRenderer(Unsubscribe, Unsigned, new Bulk.Templates.LiquidSandbox(new Bulk.Templates.TemplateLimits(), new Infrastructure.StallingClock(int.MaxValue)));
        var campaign = stalled.Compile("c1", new MessageTemplate("News <news@example.com>", "Hi {{ name }}", "Text {{ name }}", null));

        var e = Assert.Throws<Bulk.Templates.TemplateTimeoutException>(() => stalled.Render(campaign, Recipient("bea@example.org", """{"name":"Bea"}""")));

        Assert.Equal("rendering took longer than 1000 ms (Templates__MaxRenderMilliseconds)", e.Message);
    }

    [Fact]
    public void AMessageRenderedAndSent_IsNotKeptAliveByItsCampaign()
    {
        // A Worker keeps a campaign's parsed templates for all its jobs: nothing of it may hold on to the messages.
        var campaign = renderer.Compile("c1", new MessageTemplate("News <news@example.com>", "Hi {{ name }}", "Text {{ name }}", "<b>{{ name }}</b>",
            Bounce: "bounces@example.com"));
        var rendered = RenderAndDrop(campaign);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(rendered.IsAlive, "a rendered message outlived its send: something the campaign holds refers to it");
        Assert.Equal("news@example.com", campaign.From.Address);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private WeakReference RenderAndDrop(CompiledCampaign campaign)
    {
        var message = renderer.Render(campaign, Recipient("bea@example.org", """{"name":"Bea"}"""));
        Assert.Equal("Text Bea", message.TextBody);
        return new WeakReference(message);
    }

    [Fact]
    public void ATextOnlyCampaign_IsASingleTextPart()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "s", "just text", null));

        var message = renderer.Render(campaign, new JobRecipient(0, "a@example.org"));

        var part = Assert.IsType<TextPart>(message.Body);
        Assert.True(part.IsPlain);
    }

    [Fact]
    public void DataIsHtmlEncodedInTheHtmlPart_ButNotInTheTextPart()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "s", "{{ name }}", "<p>{{ name }}</p>"));

        var message = renderer.Render(campaign, Recipient("a@example.org", """{"name":"<script>x</script> & co"}"""));

        Assert.Equal("<p>&lt;script&gt;x&lt;/script&gt; &amp; co</p>", message.HtmlBody);
        Assert.Equal("<script>x</script> & co", message.TextBody);
    }

    [Fact]
    public void EachRecipientGetsItsOwnStableMessageId_DateAndCampaignHeader()
    {
        var campaign = renderer.Compile("c42", new MessageTemplate("news@example.com", "s", "t", null, new Dictionary<string, string> { ["X-Tag"] = "spring" }));

        var message = renderer.Render(campaign, new JobRecipient(7, "a@example.org"));

        Assert.Equal("c42.7@example.com", message.MessageId);
        Assert.True(DateTimeOffset.UtcNow - message.Date < TimeSpan.FromMinutes(1));
        Assert.Equal("c42", message.Headers["X-Bulk-Campaign"]);
        Assert.Equal("spring", message.Headers["X-Tag"]);
    }

    [Fact]
    public void ALineBreakInData_NeverReachesTheSubjectHeader()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "Hi {{ name }}", "t", null));

        var message = renderer.Render(campaign, Recipient("a@example.org", """{"name":"x\r\nBcc: victim@example.net"}"""));

        Assert.DoesNotContain("\n", message.Subject, StringComparison.Ordinal);
        Assert.Empty(message.Bcc);
    }

    [Theory]
    [InlineData(EncodingConstraint.EightBit)]
    [InlineData(EncodingConstraint.SevenBit)]
    public void ABareCarriageReturn_InATemplateOrInData_GoesOnTheWireAsCrlf_SoADotAfterItIsStuffed(EncodingConstraint relay)
    {
        // SMTP smuggling: a relay that takes <CR>.<CR> for the end of the data would read what follows as a second
        // message, with a MAIL FROM of the data's choosing.
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "Hi {{ v }}", "X\r.\rY {{ v }}\r", "<p>X\r.\rY {{ v }}</p>\r"));

        var message = renderer.Render(campaign, Recipient("a@example.org", """{"v":"A\r.\rMAIL FROM:<ceo@bank.com>\r"}"""));

        var wire = OnTheWire(message, relay);
        Assert.DoesNotContain(wire.Select((b, i) => (b, i)), c => c.b == '\r' && (c.i + 1 == wire.Length || wire[c.i + 1] != '\n'));
        // Each CR is a line break of its own (MimeKit reads a part's line ends back as LF).
        Assert.Equal("X\n.\nY A\n.\nMAIL FROM:<ceo@bank.com>\n\n", message.TextBody!.ReplaceLineEndings("\n"));
        // In html a value's CR is a character reference already; the template's own is a line break.
        Assert.Equal("<p>X\n.\nY A&#xD;.&#xD;MAIL FROM:&lt;ceo@bank.com&gt;&#xD;</p>\n", message.HtmlBody!.ReplaceLineEndings("\n"));
        Assert.Equal("Hi A . MAIL FROM:<ceo@bank.com>", message.Subject!.TrimEnd());
    }

    /// <summary>The bytes MailKit hands a relay for <paramref name="message"/>: prepared for what the relay offers, CRLF
    /// line ends (SmtpClient's own steps, short of the dot-stuffing, which only looks at what follows a LF).</summary>
    internal static byte[] OnTheWire(MimeMessage message, EncodingConstraint relay)
    {
        message.Prepare(relay);
        using var bytes = new MemoryStream();
        message.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, bytes);
        return bytes.ToArray();
    }

    [Theory]
    [InlineData("javascript:alert(1)")]
    [InlineData("JaVaScRiPt:alert(1)")]
    [InlineData("\tjava\tscript:alert(1)")]
    [InlineData("java\nscript:alert(1)")]
    [InlineData("vbscript:msgbox(1)")]
    [InlineData("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==")]
    public void AScriptLinkFromData_IsNeutralisedInTheHtmlPart_AndKeptAsTextInTheTextPart(string link)
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "s", "{{ link }}",
            "<a href=\"{{ link }}\">x</a><img src='{{ link }}'><a HREF={{ link }}>y</a><a href=\"https://example.com/?u={{ link | url_encode }}\">z</a>"));

        var message = renderer.Render(campaign, Recipient("a@example.org", JsonSerializer.Serialize(new Dictionary<string, string> { ["link"] = link })));

        // The link as a query parameter of an https link is left alone: only what a click would run is taken out.
        Assert.Matches("""^<a href="#">x</a><img src='#'><a HREF=#>y</a><a href="https://example\.com/\?u=[^"#]+">z</a>$""", message.HtmlBody);
        Assert.Equal(link, message.TextBody);
    }

    [Fact]
    public void NestedDataAndTheRecipientsEmail_CanBeUsedInTemplates()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "s",
            "{{ email }} {{ user.city }} {% for t in tags %}[{{ t }}]{% endfor %} {{ missing }}.", null));

        var message = renderer.Render(campaign, Recipient("a@example.org", """{"user":{"city":"Oslo"},"tags":["a","b"]}"""));

        Assert.Equal("a@example.org Oslo [a][b] .", message.TextBody);
    }

    [Theory]
    [InlineData("a\rb")]
    [InlineData("a\nBcc: victim@example.net")]
    [InlineData("a\0b")]
    public void AJobWhoseHeaderValueHasALineBreak_IsATemplateException_AndNeverReachesTheWire(string value)
    {
        // The Front refuses these; a job from elsewhere on the broker is refused here too, naming the header.
        var template = new MessageTemplate("news@example.com", "s", "t", null, new Dictionary<string, string> { ["X-Tag"] = value });

        var e = Assert.Throws<TemplateException>(() => renderer.Compile("c1", template));

        Assert.Contains("X-Tag", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATemplateThatDoesNotParse_IsATemplateException()
    {
        Assert.Throws<TemplateException>(() => renderer.Compile("c1", new MessageTemplate("news@example.com", "{% if %}", "t", null)));
    }

    [Fact]
    public void EveryMessage_CarriesAOneClickUnsubscribeForItsRecipient_AlsoAsATemplateValue()
    {
        var campaign = renderer.Compile("c9", new MessageTemplate("news@example.com", "s", "Leave: {{ unsubscribe_url }}", "<a href=\"{{ unsubscribe_url }}\">leave</a>"));

        var message = renderer.Render(campaign, new JobRecipient(3, "bea@example.org"));

        var header = message.Headers[HeaderId.ListUnsubscribe] ?? "";
        var match = System.Text.RegularExpressions.Regex.Match(header,
            @"^<https://mail\.example\.com/unsubscribe/(?<token>[A-Za-z0-9_.-]+)>, <mailto:unsubscribe@example\.com\?subject=unsubscribe%20(?<same>[A-Za-z0-9_.-]+)>$");
        Assert.True(match.Success, header);
        var token = match.Groups["token"].Value;
        Assert.Equal(token, match.Groups["same"].Value);
        Assert.Equal("List-Unsubscribe=One-Click", message.Headers[HeaderId.ListUnsubscribePost]);
        Assert.True(UnsubscribeToken.TryRead(Infrastructure.BulkSystem.UnsubscribeSecret, token, out var campaignId, out var email));
        Assert.Equal(("c9", "bea@example.org"), (campaignId, email));
        Assert.Equal($"Leave: https://mail.example.com/unsubscribe/{token}", message.TextBody);
        Assert.Contains($"href=\"https://mail.example.com/unsubscribe/{token}\"", message.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnsubscribeToken_IsRefusedWhenAlteredOrSignedWithAnotherSecret()
    {
        var token = UnsubscribeToken.Create(Infrastructure.BulkSystem.UnsubscribeSecret, "c1", "a@example.org");
        var forged = UnsubscribeToken.Create("another-secret-0123456789abcdef-0123456789", "c1", "a@example.org");
        var otherAddress = UnsubscribeToken.Create("x", "c1", "victim@example.org");
        var swapped = $"{otherAddress[..otherAddress.IndexOf('.')]}{token[token.IndexOf('.')..]}";

        Assert.True(UnsubscribeToken.TryRead(Infrastructure.BulkSystem.UnsubscribeSecret, token, out _, out _));
        foreach (var bad in new[] { forged, swapped, token[..^2], token + "A", "nodot", ".", "!!!.???" })
        {
            Assert.False(UnsubscribeToken.TryRead(Infrastructure.BulkSystem.UnsubscribeSecret, bad, out _, out _), bad);
        }
    }

    [Fact]
    public void TheEnvelopeSender_IsTheFromAddress_OrTheBounceAddress_OrWithVerpOnePerRecipient()
    {
        var plain = renderer.Compile("c1", new MessageTemplate("News <news@example.com>", "s", "t", null));
        var bounce = renderer.Compile("c1", new MessageTemplate("news@example.com", "s", "t", null, Bounce: "bounces@example.net"));
        var verp = renderer.Compile("0123456789abcdef0123456789abcdef", new MessageTemplate("news@example.com", "s", "t", null, Bounce: "bounces@example.net", Verp: true));
        var recipient = new JobRecipient(41, "a@example.org");

        Assert.Equal("news@example.com", MessageRenderer.EnvelopeSender(plain, recipient).Address);
        Assert.Equal("bounces@example.net", MessageRenderer.EnvelopeSender(bounce, recipient).Address);
        var perRecipient = MessageRenderer.EnvelopeSender(verp, recipient).Address;
        Assert.Equal("bounces+0123456789abcdef0123456789abcdef-41@example.net", perRecipient);
        Assert.True(perRecipient.IndexOf('@') <= 64, "an address's local part is at most 64 characters");
    }
}
