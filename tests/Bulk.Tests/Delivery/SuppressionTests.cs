using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bulk.Contracts;
using Bulk.Contracts.Suppressions;
using Bulk.Tests.Infrastructure;
using MimeKit;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>Unsubscribes, hard bounces and operators' entries keep an address from every later campaign.</summary>
[Collection(BrokerCollection.Name)]
public sealed partial class SuppressionTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task AOneClickUnsubscribe_IsHonouredByTheNextCampaign_WhichCountsTheRecipientAsSuppressed()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var first = await system.PostAsync(Campaign(5, text: "Hi. Leave: {{ unsubscribe_url }}"));
        await system.WaitForStatusAsync(first, s => s.Status == "completed", TimeSpan.FromSeconds(30));

        var mail = smtp.Mails.Single(m => m.Recipient == Address(0)).Message;
        var header = mail.Headers[HeaderId.ListUnsubscribe] ?? "";
        var link = LinkIn().Match(header);
        Assert.True(link.Success, header);
        var url = new Uri(link.Groups[1].Value);
        Assert.Equal(system.FrontAddress.Authority, url.Authority);
        Assert.Equal($"Hi. Leave: {url}", mail.TextBody?.Trim());
        Assert.Equal("List-Unsubscribe=One-Click", mail.Headers[HeaderId.ListUnsubscribePost]);

        // A link scanner's GET asks; it does not unsubscribe.
        using var anonymous = new HttpClient();
        var asked = await anonymous.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        Assert.Contains("<form method=\"post\"", await asked.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await system.Http.GetAsync($"/suppressions/{Address(0)}")).StatusCode);

        // What a mail provider's one-click button sends (RFC 8058); no API key needed, the token is the proof.
        var tampered = await anonymous.PostAsync(new Uri(url + "x"), OneClick());
        var clicked = await anonymous.PostAsync(url, OneClick());
        Assert.Equal(HttpStatusCode.BadRequest, tampered.StatusCode);
        Assert.Equal(HttpStatusCode.OK, clicked.StatusCode);
        var entry = await system.Http.GetFromJsonAsync<Suppression>($"/suppressions/{Address(0).ToUpperInvariant()}", Json);
        Assert.Equal((SuppressionReasons.Unsubscribed, first), (entry!.Reason, entry.CampaignId));

        var second = await system.PostAsync(Campaign(5));
        var status = await system.WaitForStatusAsync(second, s => s.IsFinished, TimeSpan.FromSeconds(30));

        Assert.Equal(("completed", 4, 0, 1, 0), (status.Status, status.Delivered, status.Failed, status.Suppressed, status.Pending));
        Assert.Equal(1, smtp.AttemptsFor(Address(0)));
        Assert.Equal(2, smtp.AttemptsFor(Address(1)));
    }

    [Fact]
    public async Task ANoSuchUserBounce_SuppressesTheAddress_ButOtherRefusalsDoNot()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address switch
        {
            _ when address == Address(1) => (550, "5.1.1 <user00001@example.org>: Recipient address rejected: User unknown"),
            _ when address == Address(2) => (550, "5.7.1 Message rejected by policy"),
            _ => null,
        };
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var first = await system.PostAsync(Campaign(4));
        var firstStatus = await system.WaitForStatusAsync(first, s => s.IsFinished, TimeSpan.FromSeconds(30));
        var second = await system.PostAsync(Campaign(4));
        var secondStatus = await system.WaitForStatusAsync(second, s => s.IsFinished, TimeSpan.FromSeconds(30));

        Assert.Equal((2, 2, 0), (firstStatus.Delivered, firstStatus.Failed, firstStatus.Suppressed));
        Assert.Equal((2, 1, 1), (secondStatus.Delivered, secondStatus.Failed, secondStatus.Suppressed));
        var bounced = await system.Http.GetFromJsonAsync<Suppression>($"/suppressions/{Address(1)}", Json);
        Assert.Equal(SuppressionReasons.HardBounce, bounced!.Reason);
        Assert.Contains("5.1.1", bounced.Detail);
        Assert.Equal(first, bounced.CampaignId);
        Assert.Equal(HttpStatusCode.NotFound, (await system.Http.GetAsync($"/suppressions/{Address(2)}")).StatusCode);
        Assert.Equal(1, smtp.AttemptsFor(Address(1)));
        Assert.Equal(2, smtp.AttemptsFor(Address(2)));
    }

    [Fact]
    public async Task OperatorsAddAndRemoveAddresses_TheListOutlivesTheFront_AndCampaignsFollowIt()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);

        var invalid = await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { Address(0), "not an address" } });
        var added = await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { Address(0), Address(1) }, note = "asked by phone" });
        var again = await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { Address(0) } });
        var removed = await system.Http.DeleteAsync($"/suppressions/{Address(1)}");
        var removedTwice = await system.Http.DeleteAsync($"/suppressions/{Address(1)}");

        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("emails[1]", await invalid.Content.ReadAsStringAsync());
        Assert.Equal("""{"added":2,"alreadySuppressed":0}""", await added.Content.ReadAsStringAsync());
        Assert.Equal("""{"added":0,"alreadySuppressed":1}""", await again.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, removedTwice.StatusCode);

        await system.RestartFrontAsync();
        using var page = JsonDocument.Parse(await system.Http.GetStringAsync("/suppressions"));
        Assert.Equal(1, page.RootElement.GetProperty("count").GetInt32());
        var only = page.RootElement.GetProperty("suppressions")[0];
        Assert.Equal((Address(0), "operator", "asked by phone"),
            (only.GetProperty("email").GetString(), only.GetProperty("reason").GetString(), only.GetProperty("detail").GetString()));

        // A Worker started now reads the list before it takes any job.
        await system.StartWorkerAsync(smtp);
        var id = await system.PostAsync(Campaign(3));
        var status = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));

        Assert.Equal((2, 1), (status.Delivered, status.Suppressed));
        Assert.Equal(0, smtp.AttemptsFor(Address(0)));
        Assert.Equal(1, smtp.AttemptsFor(Address(1)));
    }

    [Fact]
    public async Task AnOperatorsListIsRecordedWholeOrNotAtAll_WhenTheBrokerGoesAwayMidWrite_AndRetryingItIsSafe()
    {
        await using var relay = BrokerRelay.Start(broker.Uri);
        await using var system = await BulkSystem.StartFrontThroughAsync(broker, relay);
        await Poll.UntilAsync(async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        var emails = Enumerable.Range(0, Bulk.Front.Suppressions.SuppressionsApi.MaxPerRequest).Select(Address).ToArray();

        // The broker goes away once part of the request has reached it.
        var before = relay.BytesToBroker;
        var posting = system.Http.PostAsJsonAsync("/suppressions", new { emails });
        await relay.WaitForBytesToBrokerAsync(before, 100_000, TimeSpan.FromSeconds(30));
        relay.Cut();
        using var answer = await posting;
        var body = await answer.Content.ReadAsStringAsync();
        relay.Restore();

        var recorded = await SuppressedOnTheStreamAsync(system);
        output.WriteLine($"cut after {relay.BytesToBroker - before} bytes to the broker; answered {(int)answer.StatusCode}; {recorded.Count} addresses recorded");
        Assert.True(recorded.Count is 0 || recorded.SetEquals(emails), $"{recorded.Count} of {emails.Length} addresses were recorded, answered {(int)answer.StatusCode}: {body}");
        if (answer.StatusCode == HttpStatusCode.ServiceUnavailable)
        {
            Assert.Contains("recorded whole or not at all; retrying the same request is safe", body);
        }
        else
        {
            Assert.Equal((HttpStatusCode.OK, emails.Length), (answer.StatusCode, recorded.Count));
        }

        var retried = await system.Http.PostAsJsonAsync("/suppressions", new { emails });
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.True((await SuppressedOnTheStreamAsync(system)).SetEquals(emails));
        using var page = JsonDocument.Parse(await system.Http.GetStringAsync("/suppressions?limit=1"));
        Assert.Equal(emails.Length, page.RootElement.GetProperty("count").GetInt32());
    }

    /// <summary>The addresses the suppressions stream holds as suppressed, read from the broker, not from a Front.</summary>
    private async Task<HashSet<string>> SuppressedOnTheStreamAsync(BulkSystem system)
    {
        var marker = JsonSerializer.SerializeToUtf8Bytes(
            SuppressionEvent.Marker(Guid.NewGuid().ToString("N")), BulkJson.Default.SuppressionEvent);
        var entries = await broker.ReadStreamAsync(system.Topology.SuppressionsStream, marker, TimeSpan.FromSeconds(30));
        return entries.Select(e => JsonSerializer.Deserialize(e, BulkJson.Default.SuppressionEvent)!)
            .Where(e => e.Type == SuppressionType.Suppressed)
            .SelectMany(e => (IEnumerable<string>)[e.Email, .. e.MoreEmails ?? []])
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ABounceAddress_IsTheEnvelopeSender_AndWithVerpEachRecipientHasItsOwn()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var plain = await system.PostAsync(Campaign(2));
        var bounce = await system.PostAsync(Campaign(2, extra: "\"bounce\":\"bounces@example.net\","));
        var verp = await system.PostAsync(Campaign(2, extra: "\"bounce\":\"bounces@example.net\",\"verp\":true,"));
        await smtp.WaitForMailsAsync(6, TimeSpan.FromSeconds(30));

        var senders = smtp.Mails.GroupBy(m => (m.Message.MessageId ?? "").Split('.')[0]).ToDictionary(g => g.Key, g => g.Select(m => m.EnvelopeFrom ?? "").Order().ToArray());
        Assert.Equal(["news@example.com", "news@example.com"], senders[plain]);
        Assert.Equal(["bounces@example.net", "bounces@example.net"], senders[bounce]);
        Assert.Equal([$"bounces+{verp}-0@example.net", $"bounces+{verp}-1@example.net"], senders[verp]);
        Assert.All(smtp.Mails, m => Assert.Equal("news@example.com", ((MailboxAddress)m.Message.From.Single()).Address));
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static string Address(int i) => SampleCampaigns.Address(i);

    private static string Campaign(int count, string text = "Hello", string extra = "") =>
        $$"""{"from":"News <news@example.com>","subject":"s",{{extra}}"text":"{{text}}","recipients":[{{string.Join(",", Enumerable.Range(0, count).Select(i => $"\"{Address(i)}\""))}}]}""";

    private static FormUrlEncodedContent OneClick() => new([new("List-Unsubscribe", "One-Click")]);

    [GeneratedRegex("^<([^>]+)>")]
    private static partial Regex LinkIn();
}
