using System.Text.Json;
using Bulk.Front;
using Bulk.Front.Campaigns;
using Bulk.Templates;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Campaigns;

/// <summary>The campaign validator on its own, without HTTP or a broker: what it accepts, what it turns it into, and the field each refusal names.</summary>
/// <remarks>BadInputTests and TemplateRefusalTests post the same kinds of body through a Front.</remarks>
public sealed class CampaignValidatorTests
{
    private static CampaignValidator Validator(FrontOptions? options = null) =>
        new(Options.Create(options ?? new FrontOptions()), new LiquidSandbox(new TemplateLimits()));

    private static Dictionary<string, JsonElement> Data(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    /// <summary>A valid campaign to two recipients, each with a name.</summary>
    private static CampaignRequest Campaign() => new()
    {
        From = "News <news@example.com>",
        Subject = "Hi {{ name }}",
        Text = "Hello {{ name }}",
        Html = "<p>Hello {{ name }}</p>",
        Recipients = [new RecipientInput("ann@example.org", Data("""{"name":"Ann"}""")), new RecipientInput("bea@example.org", Data("""{"name":"Bea"}"""))],
    };

    [Fact]
    public void AValidCampaign_BecomesAJob_WithItsTemplates_EachRecipientAtItsIndex_AndTheBareSender()
    {
        var result = Validator().Validate(Campaign(), "c1");

        Assert.True(result.IsValid);
        var job = result.Job!;
        Assert.Equal(("c1", 2), (job.CampaignId, job.Total));
        Assert.Equal(("Hi {{ name }}", "Hello {{ name }}", "<p>Hello {{ name }}</p>"), (job.Template!.Subject, job.Template!.Text, job.Template!.Html));
        Assert.Contains("news@example.com", job.Template!.From, StringComparison.Ordinal);
        Assert.Equal([(0, "ann@example.org"), (1, "bea@example.org")], job.Recipients.Select(r => (r.Index, r.Email)));
        Assert.Equal("Ann", job.Recipients[0].Data!["name"].GetString());
        Assert.Equal("news@example.com", result.Sender);
        Assert.Equal(0, result.DuplicatesDropped);
    }

    [Fact]
    public void DuplicateAddresses_AreDroppedIgnoringCase_TheFirstKeepsItsIndex_AndTheyAreCounted()
    {
        var campaign = Campaign();
        campaign.Recipients = [new RecipientInput("x@example.org", null), new RecipientInput(" X@Example.org ", null), new RecipientInput("y@example.org", null)];
        campaign.Subject = "Hi";
        campaign.Text = "t";
        campaign.Html = null;

        var result = Validator().Validate(campaign, "c1");

        Assert.True(result.IsValid);
        Assert.Equal([(0, "x@example.org"), (2, "y@example.org")], result.Job!.Recipients.Select(r => (r.Index, r.Email)));
        Assert.Equal(1, result.DuplicatesDropped);
        Assert.Equal(2, result.Job.Total);
    }

    [Fact]
    public void ABlankBody_IsLeftOut_WhenTheOtherIsGiven()
    {
        var campaign = Campaign();
        campaign.Text = "   ";

        var result = Validator().Validate(campaign, "c1");

        Assert.True(result.IsValid);
        Assert.Null(result.Job!.Template!.Text);
    }

    public static TheoryData<string, Action<CampaignRequest>, string> Invalid => new()
    {
        { "no sender", c => c.From = null, "from" },
        { "a sender with a line break", c => c.From = "a@example.com\r\nBcc: x@evil.test", "from" },
        { "a sender that is not a mailbox", c => c.From = "nobody", "from" },
        { "no subject", c => c.Subject = " ", "subject" },
        { "a subject with NUL", c => c.Subject = "hi\0", "subject" },
        { "a subject longer than a line", c => c.Subject = new string('s', CampaignValidator.MaxSubjectLength + 1), "subject" },
        { "a subject template that does not parse", c => c.Subject = "Hi {{ name ", "subject" },
        { "no body", c => (c.Text, c.Html) = (null, " "), "text" },
        { "an html template that does not parse", c => c.Html = "<p>{% if %}</p>", "html" },
        { "a text template with a tag that reads files", c => c.Text = "{% include 'footer' %}", "text" },
        { "a text template that cannot render", c => c.Text = "{{ 1 | divided_by: 0 }}", "text" },
        { "no recipients", c => c.Recipients = [], "recipients" },
        { "a recipient without an address", c => c.Recipients = [new RecipientInput(null, null)], "recipients[0].email" },
        { "a recipient that is not an address", c => c.Recipients![1] = new RecipientInput("Bea <bea@example.org>", null), "recipients[1].email" },
        { "a header Bulk sets", c => c.Headers = new() { ["List-Unsubscribe"] = "<https://evil.test>" }, "headers.List-Unsubscribe" },
        { "an X-Bulk- header", c => c.Headers = new() { ["x-bulk-campaign"] = "other" }, "headers.x-bulk-campaign" },
        { "a header name with a colon", c => c.Headers = new() { ["X-Tag:"] = "a" }, "headers.X-Tag:" },
        { "a header value with LF", c => c.Headers = new() { ["X-Tag"] = "a\nb" }, "headers.X-Tag" },
        { "a header without a value", c => c.Headers = new() { ["X-Tag"] = null }, "headers.X-Tag" },
        { "more headers than allowed", c => c.Headers = Enumerable.Range(0, CampaignValidator.MaxHeaders + 1).ToDictionary(i => $"X-H{i}", i => (string?)"v"), "headers" },
        { "an ARC- header of any name", c => c.Headers = new() { ["ARC-Foo"] = "i=1" }, "headers.ARC-Foo" },
        { "an ARC- header in lower case", c => c.Headers = new() { ["arc-seal"] = "i=1" }, "headers.arc-seal" },
        { "Received-SPF", c => c.Headers = new() { ["Received-SPF"] = "pass" }, "headers.Received-SPF" },
        { "DomainKey-Signature", c => c.Headers = new() { ["DomainKey-Signature"] = "a=rsa-sha1" }, "headers.DomainKey-Signature" },
        { "Delivered-To", c => c.Headers = new() { ["Delivered-To"] = "ceo@example.org" }, "headers.Delivered-To" },
        { "X-Original-To", c => c.Headers = new() { ["X-Original-To"] = "ceo@example.org" }, "headers.X-Original-To" },
        { "Authentication-Results", c => c.Headers = new() { ["Authentication-Results"] = "mx; dmarc=pass" }, "headers.Authentication-Results" },
        { "Authentication-Results-Original", c => c.Headers = new() { ["Authentication-Results-Original"] = "mx; dmarc=pass" }, "headers.Authentication-Results-Original" },
        { "a sender whose name is another address", c => c.From = "\"ceo@bank.com\" <news@example.com>", "from" },
        { "a sender whose name holds another mailbox", c => c.From = "\"CEO <ceo@bank.com>\" <news@example.com>", "from" },
        { "a sender whose name is another address in full-width letters", c => c.From = "\"ceo\uFF20bank.com\" <news@example.com>", "from" },
        { "a sender whose encoded name is another address", c => c.From = "=?utf-8?q?ceo=40bank=2Ecom?= <news@example.com>", "from" },
        { "a Reply-To whose name is another address", c => c.Headers = new() { ["Reply-To"] = "\"ceo@bank.com\" <help@example.com>" }, "headers.Reply-To" },
        { "a Reply-To that is not an address", c => c.Headers = new() { ["Reply-To"] = "nobody" }, "headers.Reply-To" },
        { "VERP without a bounce address", c => c.Verp = true, "verp" },
        { "a bounce address with a name", c => c.Bounce = "Bounces <b@example.com>", "bounce" },
        { "a VERP bounce local part too long for the campaign and index", c => (c.Bounce, c.Verp) = (new string('b', CampaignValidator.MaxVerpLocalPart + 1) + "@example.com", true), "bounce" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void AnInvalidCampaign_IsRefused_NamingTheField_AndMakesNoJob(string because, Action<CampaignRequest> spoil, string field)
    {
        var campaign = Campaign();
        spoil(campaign);

        var result = Validator().Validate(campaign, "c1");

        Assert.False(result.IsValid, because);
        Assert.Null(result.Job);
        Assert.True(result.Errors.ContainsKey(field), $"{because}: the errors should name '{field}' but named {string.Join(", ", result.Errors.Keys)}");
        Assert.False(string.IsNullOrWhiteSpace(Assert.Single(result.Errors[field])));
    }

    [Theory]
    [InlineData("\"news@example.com\" <news@example.com>")]
    [InlineData("\"News (news@example.com)\" <NEWS@example.com>")]
    [InlineData("News at Example <news@example.com>")]
    [InlineData("news@example.com")]
    [InlineData("\"Team@Home\" <news@example.com>")]
    public void ASenderWhoseNameIsNoOtherAddress_IsAccepted(string from)
    {
        var campaign = Campaign();
        campaign.From = from;
        campaign.Headers = new() { ["Reply-To"] = "Help <help@example.com>, \"desk@example.com\" <desk@example.com>" };

        var result = Validator().Validate(campaign, "c1");

        Assert.True(result.IsValid, string.Join(", ", result.Errors.Select(e => $"{e.Key}: {e.Value[0]}")));
    }

    [Fact]
    public void EveryFieldThatIsWrong_IsNamed_NotJustTheFirst()
    {
        var campaign = Campaign();
        campaign.From = null;
        campaign.Subject = null;
        campaign.Recipients = [new RecipientInput("nobody", null)];

        var result = Validator().Validate(campaign, "c1");

        Assert.Equal(["from", "recipients[0].email", "subject"], result.Errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ATrialRenderingThatRunsOutOfTimeOnce_IsTriedAgain_AndTheCampaignIsAccepted()
    {
        // A cold Front's first rendering also compiles Fluid: that must not refuse a good campaign.
        var validator = new CampaignValidator(Options.Create(new FrontOptions()), new LiquidSandbox(new TemplateLimits(), new Infrastructure.StallingClock(2)));

        var result = validator.Validate(Campaign(), "c1");

        Assert.True(result.IsValid, string.Join("; ", result.Errors.SelectMany(e => e.Value)));
    }

    [Fact]
    public void ATrialRenderingThatRunsOutOfTimeTwice_IsRefused_OnTheFieldItWasRendering()
    {
        var validator = new CampaignValidator(Options.Create(new FrontOptions()), new LiquidSandbox(new TemplateLimits(), new Infrastructure.StallingClock(int.MaxValue)));

        var result = validator.Validate(Campaign(), "c1");

        var (field, messages) = Assert.Single(result.Errors);
        Assert.Equal("subject", field);
        Assert.Equal("The template cannot render for recipients[0]: rendering took longer than 1000 ms (Templates__MaxRenderMilliseconds).", Assert.Single(messages));
    }

    [Fact]
    public void ATemplateThatCannotRenderWithTheFirstRecipientsData_IsRefused_NamingThatRecipient()
    {
        var campaign = Campaign();
        campaign.Recipients = [new RecipientInput("ann@example.org", Data("""{"n":0}""")), new RecipientInput("bea@example.org", Data("""{"n":1}"""))];
        campaign.Text = "{{ 10 | divided_by: n }}";

        var result = Validator().Validate(campaign, "c1");

        Assert.Equal("The template cannot render for recipients[0]: division by zero.", Assert.Single(result.Errors["text"]));
    }

    [Fact]
    public void MoreRecipientsThanFrontMaxRecipients_AreRefusedWithTheCount()
    {
        var campaign = Campaign();
        campaign.Recipients = [.. Enumerable.Range(0, 3).Select(i => new RecipientInput($"u{i}@example.org", null))];

        var result = Validator(new FrontOptions { MaxRecipients = 2 }).Validate(campaign, "c1");

        Assert.Equal("At most 2 recipients per campaign; this one has 3.", Assert.Single(result.Errors["recipients"]));
    }

    [Fact]
    public void ABodyTemplateLargerThanFrontMaxTemplateBytes_IsRefused_CountingUtf8Bytes()
    {
        var campaign = Campaign();
        campaign.Html = new string('é', 513); // 1026 UTF-8 bytes in 513 characters

        var result = Validator(new FrontOptions { MaxTemplateBytes = 1024 }).Validate(campaign, "c1");

        Assert.Equal("The html template is larger than 1024 bytes (Front__MaxTemplateBytes).", Assert.Single(result.Errors["html"]));
    }

    [Theory]
    [InlineData(4, 6, null)] // a, b and b's two elements: 4; with Ann's and Bea's names, 6 in all
    [InlineData(3, 6, "recipients[2].data")]
    [InlineData(4, 5, "recipients")]
    public void RecipientsData_CountsEveryNestedValue_AgainstEachRecipientsLimitAndTheWholeCampaigns(int perRecipient, int inAll, string? refused)
    {
        var campaign = Campaign();
        campaign.Recipients!.Add(new RecipientInput("cid@example.org", Data("""{"a":1,"b":[1,2]}""")));

        var result = Validator(new FrontOptions { MaxDataValuesPerRecipient = perRecipient, MaxDataValues = inAll }).Validate(campaign, "c1");

        Assert.Equal(refused is null ? [] : [refused], result.Errors.Keys);
    }

    [Fact]
    public void ManyBadAddresses_ListTheFirstFifty_AndSayHowManyThereAre()
    {
        var campaign = Campaign();
        campaign.Recipients = [.. Enumerable.Range(0, 60).Select(i => new RecipientInput($"not-an-address-{i}", null))];

        var result = Validator().Validate(campaign, "c1");

        Assert.Equal(CampaignValidator.MaxRecipientErrorsListed, result.Errors.Keys.Count(k => k.EndsWith(".email", StringComparison.Ordinal)));
        Assert.True(result.Errors.ContainsKey("recipients[49].email"));
        Assert.False(result.Errors.ContainsKey("recipients[50].email"));
        Assert.Equal("60 recipients are not email addresses; the first 50 are listed.", Assert.Single(result.Errors["recipients"]));
    }

    [Theory]
    [InlineData("a@example.org", true)]
    [InlineData("a.b+tag@sub.example.org", true)]
    [InlineData("A <a@example.org>", false)]
    [InlineData("a@example.org (comment)", false)]
    [InlineData("a @example.org", false)]
    [InlineData("a@example.org\r\n", false)]
    [InlineData("@example.org", false)]
    [InlineData("a@", false)]
    [InlineData("nobody", false)]
    public void ARecipientAddress_IsABareAddressThatReadsBackUnchanged(string email, bool accepted)
    {
        Assert.Equal(accepted, CampaignValidator.IsRecipientAddress(email));
    }
}
