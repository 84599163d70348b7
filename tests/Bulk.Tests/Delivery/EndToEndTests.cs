using System.Text.Json;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Hosting;
using MimeKit;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>The whole path: HTTP POST to the Front, RabbitMQ, a Worker, a real SMTP server.</summary>
[Collection(BrokerCollection.Name)]
public sealed class EndToEndTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task PostingACampaign_AnswersAcceptedAndClosesTheConnection_ThenDeliversEachRecipientOnceWithItsOwnData()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var response = await RawHttp.PostAsync(system.FrontAddress, "/campaigns", SampleCampaigns.Personal(1000));

        Assert.Equal(202, response.Status);
        Assert.True(response.ClosedByServer, "the server must close the TCP connection after the 202");
        Assert.Equal("close", response.Headers["Connection"], ignoreCase: true);
        using var body = JsonDocument.Parse(response.Body);
        var id = body.RootElement.GetProperty("id").GetString();
        Assert.Equal($"/campaigns/{id}", response.Headers["Location"]);
        Assert.Equal("queued", body.RootElement.GetProperty("status").GetString());
        Assert.Equal(1000, body.RootElement.GetProperty("total").GetInt32());

        await smtp.WaitForMailsAsync(1000, TimeSpan.FromSeconds(90));
        var mails = smtp.Mails.ToArray();
        output.WriteLine($"202 after {response.Elapsed.TotalMilliseconds:F0} ms; first mail {(mails.Min(m => m.At) - response.ClosedAt).TotalMilliseconds:F0} ms after the connection closed; last {(mails.Max(m => m.At) - response.ClosedAt).TotalMilliseconds:F0} ms; {smtp.Sessions} SMTP sessions");

        Assert.True(response.ClosedAt < mails.Min(m => m.At), "the client had its answer and a closed connection before the first mail arrived");
        Assert.Equal(1000, mails.Length);
        Assert.Equal(1000, mails.Select(m => m.Recipient).Distinct(StringComparer.OrdinalIgnoreCase).Count());
        for (var i = 0; i < 1000; i++)
        {
            var mail = Assert.Single(mails, m => m.Recipient == SampleCampaigns.Address(i));
            Assert.Equal($"Hello Name{i}", mail.Message.Subject);
            Assert.Equal($"Hi Name{i}, you are number {i}.", mail.Message.TextBody?.Trim());
            Assert.Equal($"<p>Hi Name{i}, you are number {i}.</p>", mail.Message.HtmlBody?.Trim());
            Assert.Equal($"{id}.{i}@example.com", mail.Message.MessageId);
            Assert.Equal(SampleCampaigns.Address(i), ((MailboxAddress)mail.Message.To.Single()).Address);
        }

        Assert.InRange(smtp.Sessions, 1, 4);
        Assert.Equal(smtp.Sessions, smtp.Authenticated);
    }

    [Fact]
    public async Task TransientRefusals_AreRetried_AndEachRecipientIsDeliveredOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        // Every tenth recipient is refused with 451 twice, then accepted.
        smtp.RecipientRule = (address, before) => Number(address) % 10 == 0 && before < 2 ? (451, "4.3.0 try again later") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(200));

        await FinishThenStopAsync(system, id, worker);
        var recipients = smtp.Mails.Select(m => m.Recipient).ToList();
        Assert.Equal(200, recipients.Count);
        Assert.Equal(200, recipients.Distinct().Count());
        Assert.Equal(3, smtp.AttemptsFor(SampleCampaigns.Address(10)));
        Assert.Equal(1, smtp.AttemptsFor(SampleCampaigns.Address(11)));
    }

    [Fact]
    public async Task PermanentRefusals_FailOnlyThoseRecipients_AndAreNotRetried()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => Number(address) % 7 == 3 ? (550, "5.1.1 no such user") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(300));

        var refused = Enumerable.Range(0, 300).Where(i => i % 7 == 3).Select(SampleCampaigns.Address).ToList();
        await FinishThenStopAsync(system, id, worker);

        var delivered = smtp.Mails.Select(m => m.Recipient).ToList();
        Assert.Equal(300 - refused.Count, delivered.Count);
        Assert.Empty(delivered.Intersect(refused));
        Assert.All(refused, r => Assert.Equal(1, smtp.AttemptsFor(r)));
    }

    [Fact]
    public async Task DuplicateAddresses_GetOneMail_AndTheAnswerSaysHowManyWereDropped()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp);

        var body = """
            {"from":"a@example.com","subject":"s","text":"t",
             "recipients":["x@example.org","X@Example.org",{"email":"y@example.org"},"x@EXAMPLE.ORG"]}
            """;
        var response = await system.Http.PostAsync("/campaigns", JsonBody.Of(body));

        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(2, answer.RootElement.GetProperty("total").GetInt32());
        Assert.Equal(2, answer.RootElement.GetProperty("duplicatesDropped").GetInt32());
        await FinishThenStopAsync(system, answer.RootElement.GetProperty("id").GetString()!, worker);
        Assert.Equal(["x@example.org", "y@example.org"], smtp.Mails.Select(m => m.Recipient.ToLowerInvariant()).Order());
    }

    /// <summary>
    /// Waits until every recipient has its outcome, then stops the Worker, which lets any send still under way finish:
    /// what the relay holds then is all it will ever get, duplicates included.
    /// </summary>
    private static async Task FinishThenStopAsync(BulkSystem system, string id, IHost worker)
    {
        await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        await worker.StopAsync();
    }

    private static int Number(string address) => int.Parse(address.AsSpan(4, 5), System.Globalization.CultureInfo.InvariantCulture);
}
