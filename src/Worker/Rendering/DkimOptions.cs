using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Bulk.Worker.Rendering;

/// <summary>The DKIM key a Worker signs every message with (<c>Dkim__Domain</c>, <c>Dkim__Selector</c>, <c>Dkim__PrivateKeyFile</c>); all unset means no signing.</summary>
public sealed partial class DkimOptions : IValidatableObject
{
    public const string Section = "Dkim";

    /// <summary>RFC 8301: signers MUST NOT use RSA keys shorter than this; receivers ignore their signatures.</summary>
    private const int MinimumKeyBits = 1024;

    /// <summary>The signing domain, <c>d=</c>; DMARC passes on it only when it is the From domain or a parent of it.</summary>
    public string? Domain { get; set; }

    /// <summary>The selector, <c>s=</c>: the public key is published at <c>{Selector}._domainkey.{Domain}</c>.</summary>
    public string? Selector { get; set; }

    /// <summary>A PEM file with the RSA private key, PKCS#1 (<c>BEGIN RSA PRIVATE KEY</c>) or PKCS#8 (<c>BEGIN PRIVATE KEY</c>).</summary>
    public string? PrivateKeyFile { get; set; }

    /// <summary>Whether any DKIM setting is given; validation makes that mean all of them.</summary>
    public bool Enabled => !string.IsNullOrEmpty(Domain) || !string.IsNullOrEmpty(Selector) || !string.IsNullOrEmpty(PrivateKeyFile);

    /// <summary>Reads <see cref="PrivateKeyFile"/>; the error says in one line why it cannot be used.</summary>
    public bool TryLoadKey(out RSA? key, out string? error)
    {
        key = null;
        string pem;
        try
        {
            pem = File.ReadAllText(PrivateKeyFile!);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            error = $"Dkim__PrivateKeyFile '{PrivateKeyFile}' does not exist";
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error = $"Dkim__PrivateKeyFile '{PrivateKeyFile}' cannot be read: {e.Message}";
            return false;
        }

        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            // A public key imports too; only a private one exports its private parameters.
            rsa.ExportParameters(includePrivateParameters: true);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            rsa.Dispose();
            error = $"Dkim__PrivateKeyFile '{PrivateKeyFile}' holds no unencrypted RSA private key in PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)";
            return false;
        }

        if (rsa.KeySize < MinimumKeyBits)
        {
            rsa.Dispose();
            error = $"Dkim__PrivateKeyFile '{PrivateKeyFile}' holds a {rsa.KeySize}-bit RSA key; receivers ignore DKIM keys under {MinimumKeyBits} bits (2048 recommended)";
            return false;
        }

        key = rsa;
        error = null;
        return true;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }

        if (string.IsNullOrEmpty(Domain) || string.IsNullOrEmpty(Selector) || string.IsNullOrEmpty(PrivateKeyFile))
        {
            yield return new ValidationResult("Dkim__Domain, Dkim__Selector and Dkim__PrivateKeyFile are given together or not at all", [nameof(Domain)]);
            yield break;
        }

        if (!DnsName().IsMatch(Domain))
        {
            yield return new ValidationResult("Dkim__Domain must be a domain name such as example.com", [nameof(Domain)]);
        }

        if (!DnsName().IsMatch(Selector))
        {
            yield return new ValidationResult("Dkim__Selector must be letters, digits, hyphens and dots, such as bulk2025", [nameof(Selector)]);
        }

        // Loaded now, so that a missing or wrong key stops the Worker at start and not at its first mail.
        if (TryLoadKey(out var key, out var error))
        {
            key!.Dispose();
        }
        else
        {
            yield return new ValidationResult(error, [nameof(PrivateKeyFile)]);
        }
    }

    // RFC 6376 sub-domain *("." sub-domain), which also keeps ';' and '=' out of the DKIM-Signature tags.
    [GeneratedRegex(@"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex DnsName();
}
