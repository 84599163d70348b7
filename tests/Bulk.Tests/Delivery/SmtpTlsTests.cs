using System.Net;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>
/// TLS to the relay: the certificate is validated (against Smtp__CaFile when set), and when TLS was asked for nothing is
/// ever sent in plain text; a refused relay defers its recipients through the tiers to the dead letters, with the reason.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class SmtpTlsTests(BrokerFixture broker, ITestOutputHelper output) : IDisposable
{
    private const int Recipients = 5;

    private readonly TestCertificates certificates = new();

    [Theory]
    [InlineData("StartTls", false)]
    [InlineData("SslOnConnect", true)]
    [InlineData("", false)] // not set, with credentials: StartTls
    public async Task WithTheRelaysCaInTheCaFile_EveryMailIsDeliveredInsideTheTlsSession(string security, bool tlsOnConnect)
    {
        await using var smtp = await TestSmtpServer.StartAsync(certificates.Localhost(), tlsOnConnect);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, $"--Smtp:Security={security}", $"--Smtp:CaFile={certificates.CaFile}");

        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(30));

        Assert.Equal((CampaignLedger.Statuses.Completed, Recipients, 0), (done.Status, done.Delivered, done.Failed));
        Assert.Equal(Recipients, smtp.Mails.Count);
        Assert.All(smtp.Mails, m => Assert.True(m.OverTls, $"{m.Recipient} arrived outside TLS"));
        Assert.Equal(0, smtp.PlainTextTransactions);
        Assert.Equal(smtp.Sessions, smtp.Authenticated);
    }

    [Fact]
    public async Task StartTls_WithoutACaFile_RefusesACertificateTheSystemDoesNotTrust_AndNothingGoesOutInPlainText()
    {
        await using var smtp = await TestSmtpServer.StartAsync(certificates.Localhost(), tlsOnConnect: false);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, "--Smtp:Security=StartTls");

        var replies = await DeadLetteredRepliesAsync(system, smtp);

        Assert.All(replies, reply =>
        {
            Assert.StartsWith($"dead-lettered after {BulkSystem.TestTiers.Length} delay tiers: connect: TLS with 127.0.0.1:{smtp.Port} failed", reply);
            Assert.Contains("certificate could not be validated", reply);
        });
    }

    [Fact]
    public async Task StartTls_ToARelayThatDoesNotOfferIt_SendsNothingInPlainText_AndSaysWhy()
    {
        await using var smtp = await TestSmtpServer.StartAsync(); // no certificate: EHLO does not offer STARTTLS
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, "--Smtp:Security=StartTls", $"--Smtp:CaFile={certificates.CaFile}");

        var replies = await DeadLetteredRepliesAsync(system, smtp);

        Assert.All(replies, reply => Assert.Contains($"connect: 127.0.0.1:{smtp.Port} does not offer STARTTLS", reply));
        Assert.Equal(0, smtp.Authenticated); // not even the password went out
    }

    [Fact]
    public async Task WithCredentialsAndNoSecuritySet_ARelayThatDoesNotOfferStartTls_GetsNeitherThePasswordNorAnyMail()
    {
        await using var smtp = await TestSmtpServer.StartAsync(); // no certificate: EHLO does not offer STARTTLS
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // The Worker authenticates; an empty value unsets the Smtp__Security=None the test Workers are given.
        await system.StartWorkerAsync(smtp, "--Smtp:Security=");

        var replies = await DeadLetteredRepliesAsync(system, smtp);

        Assert.All(replies, reply => Assert.Contains(
            $"connect: 127.0.0.1:{smtp.Port} does not offer STARTTLS, and StartTls (the default with Smtp__Username) never sends in plain text", reply));
        Assert.Equal(0, smtp.Authenticated);
    }

    [Fact]
    public async Task ACertificateForAnotherHost_SignedByTheTrustedCa_IsRefused_WithOneWarningPerFailedConnection()
    {
        var elsewhere = certificates.Issue("relay.example.net", [IPAddress.Parse("192.0.2.7")], DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        await using var smtp = await TestSmtpServer.StartAsync(elsewhere, tlsOnConnect: false);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // A real process, so that its log can be read: the warning is the operator's only sign before the dead letters.
        var worker = await system.StartWorkerProcessAsync(smtp.Port, "--Smtp:Security=StartTls", $"--Smtp:CaFile={certificates.CaFile}",
            "--Logging:LogLevel:Bulk.Worker.Smtp.SmtpConnectionPool=Warning");

        var replies = await DeadLetteredRepliesAsync(system, smtp);

        Assert.All(replies, reply => Assert.Contains("The host name (127.0.0.1) did not match the name given in the server's SSL certificate", reply));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Warnings(worker) != smtp.Sessions && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Equal(smtp.Sessions, Warnings(worker));
        Assert.Contains(worker.Output.Split('\n'), line => line.StartsWith("warn:", StringComparison.Ordinal) && line.Contains("did not match", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("issued by another CA", "not issued by a CA in that file")]
    [InlineData("expired", "expired")]
    public async Task ACertificateTheCaFileDoesNotVouchFor_IsRefused(string which, string named)
    {
        using var otherCa = new TestCertificates("Some Other CA");
        var certificate = which == "expired"
            ? certificates.Issue("localhost", [IPAddress.Loopback], DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-10))
            : otherCa.Localhost();
        await using var smtp = await TestSmtpServer.StartAsync(certificate, tlsOnConnect: true);
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp, "--Smtp:Security=SslOnConnect", $"--Smtp:CaFile={certificates.CaFile}");

        var replies = await DeadLetteredRepliesAsync(system, smtp);

        Assert.All(replies, reply =>
        {
            Assert.Contains("fails validation against Smtp__CaFile", reply);
            Assert.Contains(named, reply, StringComparison.OrdinalIgnoreCase);
        });
    }

    /// <summary>
    /// Posts a campaign the relay must refuse, waits until every recipient went through the tiers to the dead letters,
    /// checks that the relay got nothing, and answers the recorded replies.
    /// </summary>
    private async Task<string[]> DeadLetteredRepliesAsync(BulkSystem system, TestSmtpServer smtp)
    {
        var id = await system.PostAsync(SampleCampaigns.Personal(Recipients));
        var deferred = await system.WaitForStatusAsync(id, s => s.Deferred > 0 || s.IsFinished, TimeSpan.FromSeconds(30));
        Assert.Equal(0, deferred.Delivered);

        // Tiers of 1, 2 and 4 s: dead letters in about 10 s.
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        using var failures = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures"));
        var list = failures.RootElement.GetProperty("failures").EnumerateArray().ToArray();
        var replies = list.Select(f => f.GetProperty("reply").GetString()!).ToArray();
        output.WriteLine(replies.FirstOrDefault() ?? "(no failures)");

        Assert.Equal((0, Recipients), (done.Delivered, done.Failed));
        Assert.Equal(Recipients, list.Length);
        Assert.All(list, f => Assert.True(f.GetProperty("deadLettered").GetBoolean()));
        Assert.True(smtp.Sessions > 0, "the Worker never reached the relay, so the test shows nothing");
        Assert.Empty(smtp.Mails);
        Assert.Equal(0, smtp.PlainTextTransactions);
        return replies;
    }

    private static int Warnings(ChildProcess worker) =>
        worker.Output.Split('\n').Count(line => line.Contains("TLS with SMTP relay", StringComparison.Ordinal));

    public void Dispose() => certificates.Dispose();
}
