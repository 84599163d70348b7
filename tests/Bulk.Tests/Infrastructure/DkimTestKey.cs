using System.Security.Cryptography;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;

namespace Bulk.Tests.Infrastructure;

/// <summary>A fresh RSA key in a temporary PEM file, and the DNS record a receiver would look its public half up in.</summary>
public sealed class DkimTestKey : IDisposable
{
    private readonly RSA rsa = RSA.Create(2048);

    /// <param name="pkcs8">Write the key as PKCS#8 (BEGIN PRIVATE KEY) instead of PKCS#1 (BEGIN RSA PRIVATE KEY).</param>
    public DkimTestKey(string domain = "example.com", string selector = "bulk", bool pkcs8 = false)
    {
        Domain = domain;
        Selector = selector;
        File.WriteAllText(PrivateKeyFile, pkcs8 ? rsa.ExportPkcs8PrivateKeyPem() : rsa.ExportRSAPrivateKeyPem());
    }

    public string Domain { get; }

    public string Selector { get; }

    public string PrivateKeyFile { get; } = Path.Combine(Path.GetTempPath(), $"bulk-dkim-{Guid.NewGuid():N}.pem");

    /// <summary>The TXT record at <c>{Selector}._domainkey.{Domain}</c>.</summary>
    public string TxtRecord => $"v=DKIM1; k=rsa; p={Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo())}";

    /// <summary>The Worker's command-line settings that make it sign with this key.</summary>
    public string[] WorkerSettings => [$"--Dkim:Domain={Domain}", $"--Dkim:Selector={Selector}", $"--Dkim:PrivateKeyFile={PrivateKeyFile}"];

    /// <summary>A verifier that finds this key, and only at this domain and selector, as DNS would.</summary>
    public DkimVerifier Verifier() => new(new Locator(this));

    /// <summary>Checks the message's one DKIM-Signature the way a receiver does.</summary>
    public bool Verifies(MimeMessage message)
    {
        var index = message.Headers.IndexOf(HeaderId.DkimSignature);
        Assert.True(index >= 0, "the message has no DKIM-Signature");
        return Verifier().Verify(message, message.Headers[index]);
    }

    /// <summary>The tags of the message's DKIM-Signature, e.g. d, s, c, h.</summary>
    public static Dictionary<string, string> Tags(MimeMessage message) =>
        message.Headers[HeaderId.DkimSignature]!
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(tag => tag.Split('=', 2))
            .ToDictionary(pair => pair[0], pair => string.Concat(pair[1].Where(c => !char.IsWhiteSpace(c))));

    public void Dispose()
    {
        File.Delete(PrivateKeyFile);
        rsa.Dispose();
    }

    private sealed class Locator(DkimTestKey key) : DkimPublicKeyLocatorBase
    {
        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            domain == key.Domain && selector == key.Selector
                ? GetPublicKey(key.TxtRecord)
                : throw new InvalidOperationException($"no DKIM record at {selector}._domainkey.{domain}");

        public override Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            Task.FromResult(LocatePublicKey(methods, domain, selector, cancellationToken));
    }
}
