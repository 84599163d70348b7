using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using Bulk.Broker.Suppressions;
using Bulk.Contracts;
using Bulk.Templates;
using Fluid;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Bulk.Worker.Rendering;

/// <summary>A campaign's templates, parsed once per job and rendered once per recipient.</summary>
public sealed record CompiledCampaign(
    string CampaignId,
    MailboxAddress From,
    IFluidTemplate Subject,
    IFluidTemplate? Text,
    IFluidTemplate? Html,
    IReadOnlyDictionary<string, string>? Headers,
    MailboxAddress? Bounce = null,
    bool Verp = false);

/// <summary>The template of a job could not be used at all; the Front validates templates, so this means a foreign job.</summary>
public sealed class TemplateException(string message) : Exception(message);

/// <summary>Fills a campaign's Liquid templates with one recipient's data and builds the MIME message.</summary>
/// <remarks>
/// Every message carries a one-click unsubscribe (RFC 8058) for its recipient, whose link is also in the templates as
/// <c>{{ unsubscribe_url }}</c>.
/// Templates render in the <see cref="LiquidSandbox"/>: a recipient whose message cannot render gets a <see cref="TemplateRenderException"/>.
/// </remarks>
public sealed class MessageRenderer(IOptions<UnsubscribeOptions> unsubscribe, MessageSigner signer, LiquidSandbox sandbox)
{
    private readonly string secret = unsubscribe.Value.Secret!;
    private readonly string baseUrl = unsubscribe.Value.BaseUrl!.TrimEnd('/');
    private readonly string? mailto = string.IsNullOrEmpty(unsubscribe.Value.Mailto) ? null : unsubscribe.Value.Mailto;

    public CompiledCampaign Compile(string campaignId, MessageTemplate template)
    {
        if (!MailboxAddress.TryParse(template.From, out var from))
        {
            throw new TemplateException($"the sender '{template.From}' is not a mailbox");
        }

        MailboxAddress? bounce = null;
        if (template.Bounce is not null && !MailboxAddress.TryParse(template.Bounce, out bounce))
        {
            throw new TemplateException($"the bounce address '{template.Bounce}' is not a mailbox");
        }

        // The Front refuses these; a job that did not come through it must not put a line of its own on the wire either.
        if (template.Headers?.FirstOrDefault(h => h.Value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0) is { Key: { } broken })
        {
            throw new TemplateException($"the header '{broken}' has a CR, LF or NUL in its value");
        }

        return new CompiledCampaign(
            campaignId,
            from,
            Parse("subject", template.Subject)!,
            Parse("text", template.Text),
            Parse("html", template.Html),
            template.Headers,
            bounce,
            template.Verp);
    }

    /// <summary>The MAIL FROM of a recipient's message: the campaign's bounce address, per recipient with VERP.</summary>
    public static MailboxAddress EnvelopeSender(CompiledCampaign campaign, JobRecipient recipient)
    {
        if (campaign.Bounce is not { } bounce)
        {
            return campaign.From;
        }

        if (!campaign.Verp)
        {
            return bounce;
        }

        // The recipient's index rather than its address keeps the local part short (64 characters at most) and
        // does not hand the address to whoever relays the bounce; the campaign maps the index back to it.
        var at = bounce.Address.LastIndexOf('@');
        return new MailboxAddress("", $"{bounce.Address[..at]}+{campaign.CampaignId}-{recipient.Index}{bounce.Address[at..]}");
    }

    /// <exception cref="TemplateRenderException">The recipient's message cannot render (its data, or the template's limits).</exception>
    /// <remarks>A message that runs out of time is rendered once more before its recipient fails
    /// (<see cref="LiquidSandbox.OnceMoreIfOutOfTime"/>): the first messages of a fresh Worker also pay for its JIT.</remarks>
    public MimeMessage Render(CompiledCampaign campaign, JobRecipient recipient) =>
        LiquidSandbox.OnceMoreIfOutOfTime(() => RenderOnce(campaign, recipient));

    private MimeMessage RenderOnce(CompiledCampaign campaign, JobRecipient recipient)
    {
        var token = UnsubscribeToken.Create(secret, campaign.CampaignId, recipient.Email);
        var unsubscribeUrl = $"{baseUrl}/unsubscribe/{token}";
        var context = sandbox.NewContext(recipient.Data, recipient.Email, unsubscribeUrl);
        // A placeholder value may carry a line break; a subject never does.
        var subject = sandbox.RenderLine(campaign.Subject, context, "the subject").ReplaceLineEndings(" ");
        var text = campaign.Text is null ? null : Part("plain", campaign.Text, context, NullEncoder.Default);
        var html = campaign.Html is null ? null : Part("html", campaign.Html, context, HtmlEncoder.Default);

        // The headers every mail of the campaign shares are encoded once and copied: MimeMessage() would also make a
        // Date, Subject and Message-ID of its own only for them to be replaced (a third of a mail's allocations).
        var fixedHeaders = FixedHeaders.Of(campaign);
        // The From list is parsed from the copied header, so each message has its own address: a MimeKit address list
        // subscribes to changes of its addresses, and the campaign's one shared From, added to every message, kept every
        // message ever rendered with it alive (a gigabyte per thousand 1 MB mails).
        var message = new MimeMessage((IEnumerable<Header>)[fixedHeaders.From.Clone()]);
        message.Date = DateTimeOffset.UtcNow;
        message.Subject = subject;
        // Stable per recipient, so the same recipient of the same campaign is recognisable wherever it lands.
        message.MessageId = $"{campaign.CampaignId}.{recipient.Index}@{campaign.From.Domain}";
        message.To.Add(MailboxAddress.Parse(recipient.Email));
        message.Headers.Add(fixedHeaders.Campaign.Clone());
        // RFC 2369 and RFC 8058: mail clients show an unsubscribe button, and a POST to the link unsubscribes at once.
        message.Headers.Add(HeaderId.ListUnsubscribe,
            mailto is null ? $"<{unsubscribeUrl}>" : $"<{unsubscribeUrl}>, <mailto:{mailto}?subject=unsubscribe%20{token}>");
        message.Headers.Add(fixedHeaders.OneClick.Clone());
        foreach (var header in fixedHeaders.Custom)
        {
            message.Headers.Add(header.Clone());
        }

        // What BodyBuilder makes of a text and an html body, with each part's content written by the template itself.
        message.Body = (text, html) switch
        {
            ({ } plain, { } rich) => new MultipartAlternative { plain, rich },
            _ => text ?? html ?? new TextPart("plain") { Text = "" },
        };
        signer.Sign(message); // last: nothing may change a message once it is signed
        return message;
    }

    /// <summary>A text part whose content the template renders straight into, as UTF-8 in pooled blocks: a large
    /// template never becomes a string per recipient (see <see cref="LiquidSandbox.RenderTo"/>).</summary>
    /// <remarks>On the way, a bare CR becomes CRLF (<see cref="BareCarriageReturnStream"/>), and in html a link that
    /// would run something becomes "#" (<see cref="HtmlLinkStream"/>).</remarks>
    private TextPart Part(string subtype, IFluidTemplate template, TemplateContext context, System.Text.Encodings.Web.TextEncoder encoder)
    {
        var content = new MimeKit.IO.MemoryBlockStream();
        var lines = new BareCarriageReturnStream(content);
        var links = subtype == "html" ? new HtmlLinkStream(lines) : null;
        sandbox.RenderTo(template, context, encoder, (Stream?)links ?? lines);
        links?.Complete();
        lines.Complete();
        content.Position = 0;
        var part = new TextPart(subtype) { Content = new MimeContent(content) };
        part.ContentType.Charset = "utf-8";
        return part;
    }

    /// <summary>A campaign's headers that are the same in every mail, encoded once per compiled campaign.</summary>
    private sealed class FixedHeaders
    {
        // Keyed by the compiled campaign's identity, so whoever compiles or caches campaigns need not carry these.
        private static readonly ConditionalWeakTable<CompiledCampaign, FixedHeaders> ByCampaign = new();

        private FixedHeaders(CompiledCampaign campaign)
        {
            var from = new MimeMessage((IEnumerable<Header>)[]);
            from.From.Add(campaign.From);
            From = from.Headers[0];
            Campaign = new Header("X-Bulk-Campaign", campaign.CampaignId);
            OneClick = new Header(HeaderId.ListUnsubscribePost, "List-Unsubscribe=One-Click");
            Custom = campaign.Headers?.Select(h => new Header(h.Key, h.Value)).ToArray() ?? [];
        }

        public Header From { get; }

        public Header Campaign { get; }

        public Header OneClick { get; }

        public Header[] Custom { get; }

        public static FixedHeaders Of(CompiledCampaign campaign) => ByCampaign.GetValue(campaign, static c => new FixedHeaders(c));
    }

    private IFluidTemplate? Parse(string field, string? source)
    {
        if (source is null)
        {
            return null;
        }

        return sandbox.TryParse(source, out var template, out var error)
            ? template
            : throw new TemplateException($"the {field} template: {error}");
    }
}
