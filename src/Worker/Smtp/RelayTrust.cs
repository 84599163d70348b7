using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bulk.Worker.Smtp;

/// <summary>The CA certificates of <c>Smtp__CaFile</c>: when set, the only roots the relay's certificate may chain to.</summary>
/// <remarks>
/// A private relay's issuer is known, so trusting the system store as well would only widen who can impersonate the
/// relay. Everything else is still checked: the host name (by TLS itself), signatures, validity dates, the serverAuth
/// usage, and revocation where the CA publishes it (a private CA without a CRL is accepted, a revoked certificate is not).
/// </remarks>
public sealed class RelayTrust
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    private readonly X509Certificate2Collection roots = [];
    private readonly X509Certificate2Collection intermediates = [];

    private RelayTrust(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            // A CA certificate that is not self-signed can only help complete the chain; the roots anchor it.
            (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) ? roots : intermediates).Add(certificate);
        }
    }

    /// <summary>Reads the PEM file; validation has already said it exists and holds certificates.</summary>
    public static RelayTrust Load(string path)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        return new RelayTrust(certificates);
    }

    /// <summary>Why <paramref name="path"/> cannot serve as a CA file, in a few words; null when it can.</summary>
    public static string? Problem(string path)
    {
        if (!File.Exists(path))
        {
            return $"{path} does not exist";
        }

        try
        {
            var certificates = new X509Certificate2Collection();
            certificates.ImportFromPemFile(path);
            return certificates.Count == 0 ? $"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            return $"{path} cannot be read: {e.Message.ReplaceLineEndings(" ")}";
        }
    }

    /// <summary>The check MailKit runs in the TLS handshake instead of its own; <paramref name="refusal"/> says why it failed.</summary>
    /// <remarks>
    /// Only "chain not trusted by the system" is overlooked from the handshake's own verdict, and only because the chain
    /// is then built again here against the CA file. A wrong host name or a missing certificate is never overlooked.
    /// </remarks>
    public bool Accepts(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors, out string? refusal)
    {
        refusal = null;
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false; // MailKit's message names the host-name mismatch or the missing certificate.
        }

        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(roots);
        policy.ExtraStore.AddRange(intermediates);
        if (presented is not null)
        {
            // What the relay sent along, to complete the chain; certificates here are never trusted as roots.
            policy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var element in presented.ChainElements)
            {
                policy.ExtraStore.Add(element.Certificate);
            }
        }

        policy.ApplicationPolicy.Add(ServerAuthentication);
        policy.RevocationMode = X509RevocationMode.Online;
        policy.RevocationFlag = X509RevocationFlag.ExcludeRoot;
        policy.VerificationFlags = X509VerificationFlags.IgnoreEndRevocationUnknown | X509VerificationFlags.IgnoreCertificateAuthorityRevocationUnknown;

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (chain.Build(leaf))
        {
            return true;
        }

        var reasons = chain.ChainStatus.Where(s => (s.Status & SoftFailures) == 0).Select(Reason).Distinct();
        refusal = $"the relay's certificate ({leaf.Subject}) fails validation against Smtp__CaFile: {string.Join("; ", reasons)}";
        return false;
    }

    // Listed by the chain even though the verification flags overlook them; naming them would mislead.
    private const X509ChainStatusFlags SoftFailures = X509ChainStatusFlags.RevocationStatusUnknown | X509ChainStatusFlags.OfflineRevocation;

    private static string Reason(X509ChainStatus status) => status.Status switch
    {
        // The platform's words here ("unable to get local issuer certificate") do not say which file to look at.
        X509ChainStatusFlags.PartialChain or X509ChainStatusFlags.UntrustedRoot => "not issued by a CA in that file",
        _ when status.StatusInformation.Trim() is { Length: > 0 } text => text,
        _ => status.Status.ToString(),
    };
}
