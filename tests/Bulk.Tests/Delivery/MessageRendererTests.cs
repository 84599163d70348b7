using System.Text.Json;
using Bulk.Contracts;
using Bulk.Worker.Rendering;
using MimeKit;

namespace Bulk.Tests.Delivery;

public sealed class MessageRendererTests
{
    private readonly MessageRenderer renderer = new();

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

    [Fact]
    public void NestedDataAndTheRecipientsEmail_CanBeUsedInTemplates()
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("news@example.com", "s",
            "{{ email }} {{ user.city }} {% for t in tags %}[{{ t }}]{% endfor %} {{ missing }}.", null));

        var message = renderer.Render(campaign, Recipient("a@example.org", """{"user":{"city":"Oslo"},"tags":["a","b"]}"""));

        Assert.Equal("a@example.org Oslo [a][b] .", message.TextBody);
    }

    [Fact]
    public void ATemplateThatDoesNotParse_IsATemplateException()
    {
        Assert.Throws<TemplateException>(() => renderer.Compile("c1", new MessageTemplate("news@example.com", "{% if %}", "t", null)));
    }
}
