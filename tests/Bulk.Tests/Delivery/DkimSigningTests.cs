using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Rendering;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MimeKit;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>With a DKIM key configured, every rendered message carries a signature a receiver verifies, and tampering breaks it.</summary>
public sealed class DkimSigningTests(ITestOutputHelper output) : IDisposable
{
    private readonly DkimTestKey key = new();

    public void Dispose() => key.Dispose();

    private static MessageRenderer Renderer(DkimTestKey key) =>
        new(MessageRendererTests.Unsubscribe, new MessageSigner(
            Options.Create(new DkimOptions { Domain = key.Domain, Selector = key.Selector, PrivateKeyFile = key.PrivateKeyFile }),
            NullLogger<MessageSigner>.Instance), MessageRendererTests.Sandbox);

    private static MimeMessage Render(MessageRenderer renderer, string name, IReadOnlyDictionary<string, string>? headers = null)
    {
        var campaign = renderer.Compile("c1", new MessageTemplate("News <news@example.com>", "Hi {{ name }}", "Text {{ name }}", "<b>{{ name }}</b>", headers));
        var data = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(JsonSerializer.Serialize(new { name }));
        return renderer.Render(campaign, new JobRecipient(7, "bea@example.org", data));
    }

    // What a receiver has: the bytes as sent (CRLF line ends, as MailKit writes them), parsed again.
    private static string Wire(MimeMessage message)
    {
        using var stream = new MemoryStream();
        message.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, stream);
        return Encoding.Latin1.GetString(stream.ToArray());
    }

    private static MimeMessage Parse(string wire) => MimeMessage.Load(new MemoryStream(Encoding.Latin1.GetBytes(wire)));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ASignedMessage_VerifiesWithThePublishedKey_SignedAsTheConfiguredDomainAndSelector(bool pkcs8)
    {
        using var pemKey = new DkimTestKey("mail.example.com", "bulk2025", pkcs8);

        var received = Parse(Wire(Render(Renderer(pemKey), "Zoë")));

        Assert.True(pemKey.Verifies(received));
        var tags = DkimTestKey.Tags(received);
        Assert.Equal("mail.example.com", tags["d"]);
        Assert.Equal("bulk2025", tags["s"]);
        Assert.Equal("rsa-sha256", tags["a"]);
        Assert.Equal("relaxed/relaxed", tags["c"]);
        Assert.Equal(
            "from:to:subject:date:message-id:mime-version:content-type:reply-to:list-unsubscribe:list-unsubscribe-post:from:subject:list-unsubscribe:list-unsubscribe-post",
            tags["h"]);
        Assert.Equal("Hi Zoë", received.Subject);
        Assert.Equal("Text Zoë", received.TextBody);
    }

    [Theory]
    [InlineData("Text Bea", "Text Bob")]
    [InlineData("<b>Bea</b>", "<b>Bob</b>")]
    [InlineData("Subject: Hi Bea", "Subject: Hi Bob")]
    [InlineData("To: bea@example.org", "To: bob@example.org")]
    public void ChangingTheBodyOrASignedHeader_FailsVerification(string original, string tampered)
    {
        var wire = Wire(Render(Renderer(key), "Bea"));
        Assert.True(key.Verifies(Parse(wire)));
        Assert.Contains(original, wire, StringComparison.Ordinal);

        Assert.False(key.Verifies(Parse(wire.Replace(original, tampered, StringComparison.Ordinal))));
    }

    [Theory]
    [InlineData("Reply-To: attacker@example.net")]
    [InlineData("List-Unsubscribe: <https://attacker.example.net/u>")]
    [InlineData("From: ceo@example.net")]
    [InlineData("Subject: Reset your password")]
    public void AddingAReplyTo_OrASecondFromSubjectOrListUnsubscribe_FailsVerification(string added)
    {
        var wire = Wire(Render(Renderer(key), "Bea"));

        Assert.False(key.Verifies(Parse(wire.Replace("Subject:", $"{added}\r\nSubject:", StringComparison.Ordinal))));
    }

    [Fact]
    public void TheCampaignsReplyTo_AndTheUnsubscribeLink_AreSigned()
    {
        var headers = new Dictionary<string, string> { ["Reply-To"] = "help@example.com" };
        var wire = Wire(Render(Renderer(key), "Bea", headers));
        Assert.True(key.Verifies(Parse(wire)));

        Assert.False(key.Verifies(Parse(wire.Replace("help@example.com", "help@example.net", StringComparison.Ordinal))));
        Assert.False(key.Verifies(Parse(wire.Replace("<https://mail.example.com/unsubscribe/", "<https://attacker.example.net/unsubscribe/", StringComparison.Ordinal))));
    }

    [Fact]
    public void RelaxedCanonicalization_ToleratesARelayRefoldingHeaderWhitespace()
    {
        var wire = Wire(Render(Renderer(key), "Bea"));

        Assert.True(key.Verifies(Parse(wire.Replace("Subject: Hi Bea", "Subject:   Hi\r\n  Bea", StringComparison.Ordinal))));
    }

    [Fact]
    public void SigningOnManyThreadsAtOnce_GivesSignaturesThatAllVerify()
    {
        var renderer = Renderer(key);
        var wires = new string[200];

        Parallel.For(0, wires.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => wires[i] = Wire(Render(renderer, $"Name{i}")));

        Assert.All(wires, wire => Assert.True(key.Verifies(Parse(wire))));
    }

    [Fact]
    public void WithoutDkimSettings_MessagesAreNotSigned()
    {
        var message = Render(new MessageRenderer(MessageRendererTests.Unsubscribe, MessageRendererTests.Unsigned, MessageRendererTests.Sandbox), "Bea");

        Assert.False(message.Headers.Contains(HeaderId.DkimSignature));
    }

    [Fact]
    public void SigningCost_PerMessage_IsReported()
    {
        const int count = 1000;
        var unsigned = new MessageRenderer(MessageRendererTests.Unsubscribe, MessageRendererTests.Unsigned, MessageRendererTests.Sandbox);
        var signing = Renderer(key);
        for (var i = 0; i < 50; i++)
        {
            Render(unsigned, "warm");
            Render(signing, "warm");
        }

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            Render(unsigned, $"Name{i}");
        }

        var plain = clock.Elapsed;
        MimeMessage? last = null;
        clock.Restart();
        for (var i = 0; i < count; i++)
        {
            last = Render(signing, $"Name{i}");
        }

        var signed = clock.Elapsed;
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var digest = new byte[32];
        clock.Restart();
        for (var i = 0; i < count; i++)
        {
            rsa.SignHash(digest, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        }

        var rsaOnly = clock.Elapsed;
        output.WriteLine($"render {plain.TotalMilliseconds / count:F3} ms/message unsigned, {signed.TotalMilliseconds / count:F3} ms signed: DKIM costs {(signed - plain).TotalMilliseconds / count:F3} ms/message of CPU, of which the RSA-2048 signature alone {rsaOnly.TotalMilliseconds / count:F3} ms ({Environment.ProcessorCount} CPUs)");

        Assert.True(key.Verifies(Parse(Wire(last!))));
    }
}
