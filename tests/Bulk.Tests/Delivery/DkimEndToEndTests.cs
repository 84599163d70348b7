using Bulk.Tests.Infrastructure;
using MimeKit;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>A Worker with a DKIM key: what the relay receives verifies, checked on the bytes that came over SMTP.</summary>
[Collection(BrokerCollection.Name)]
public sealed class DkimEndToEndTests(BrokerFixture broker, ITestOutputHelper output)
{
    [Fact]
    public async Task AWorkerWithADkimKey_DeliversMessagesThatVerifyAsReceived()
    {
        using var key = new DkimTestKey("example.com", "bulk");
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, key.WorkerSettings);

        var id = await system.PostAsync(SampleCampaigns.Personal(20));

        await smtp.WaitForMailsAsync(20, TimeSpan.FromSeconds(60));
        var mails = smtp.Mails.ToArray();
        Assert.Equal(20, mails.Select(m => m.Recipient).Distinct().Count());
        foreach (var mail in mails)
        {
            // Parsed afresh from the received bytes; MimeKit writing it back unchanged shows the parse kept every byte
            // the signature covers, so verifying the parsed message is verifying what came over the wire.
            var received = MimeMessage.Load(new MemoryStream(mail.Raw!));
            // (The server hands over the data without the CRLF that ends its last line: it shares it with the ".".)
            using (var rewritten = new MemoryStream())
            {
                received.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, rewritten);
                Assert.Equal([.. mail.Raw!, .. "\r\n"u8], rewritten.ToArray());
            }

            Assert.True(key.Verifies(received), $"DKIM does not verify for {mail.Recipient}");
            var tags = DkimTestKey.Tags(received);
            Assert.Equal(("example.com", "bulk", "relaxed/relaxed"), (tags["d"], tags["s"], tags["c"]));
            var number = int.Parse(mail.Recipient.AsSpan(4, 5), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal($"Hello Name{number}", received.Subject);
            Assert.Equal($"{id}.{number}@example.com", received.MessageId);
        }

        output.WriteLine(System.Text.Encoding.ASCII.GetString(mails[0].Raw!).Split("\r\n\r\n")[0]);
    }
}
