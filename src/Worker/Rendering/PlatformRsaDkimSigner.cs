using System.Security.Cryptography;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;

namespace Bulk.Worker.Rendering;

/// <summary>MimeKit's DKIM signer with the RSA-SHA256 step done by the platform's crypto (OpenSSL) rather than managed BouncyCastle.</summary>
/// <remarks>
/// MimeKit still canonicalizes and hashes the headers and body; only the private-key operation moves, because the
/// managed one costs a Worker far more CPU per message (figures in docs/benchmarks.md, "DKIM signing").
/// </remarks>
internal sealed class PlatformRsaDkimSigner : DkimSigner
{
    // RSA instances are not documented as safe to share between threads: one per thread, all the same key.
    private readonly ThreadLocal<RSA> keys;

    public PlatformRsaDkimSigner(RSA key, string domain, string selector)
        : base(DotNetUtilities.GetRsaKeyPair(key).Private, domain, selector, DkimSignatureAlgorithm.RsaSha256)
    {
        var pkcs8 = key.ExportPkcs8PrivateKey();
        keys = new ThreadLocal<RSA>(() =>
        {
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(pkcs8, out _);
            return rsa;
        });
    }

    protected override ISigner CreateSigningContext() => new Context(keys.Value!);

    /// <summary>One signature: MimeKit streams the canonical headers in, then asks for the signature once.</summary>
    private sealed class Context(RSA key) : ISigner
    {
        private readonly IncrementalHash sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public string AlgorithmName => "SHA-256withRSA";

        public void Init(bool forSigning, ICipherParameters parameters)
        {
            // Keyed at construction.
        }

        public void Update(byte input) => sha256.AppendData([input]);

        public void BlockUpdate(byte[] input, int inOff, int inLen) => sha256.AppendData(input, inOff, inLen);

        public void BlockUpdate(ReadOnlySpan<byte> input) => sha256.AppendData(input);

        public int GetMaxSignatureSize() => (key.KeySize + 7) / 8;

        public byte[] GenerateSignature()
        {
            using (sha256)
            {
                return key.SignHash(sha256.GetHashAndReset(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            }
        }

        public bool VerifySignature(byte[] signature) => throw new NotSupportedException("this context only signs");

        public void Reset() => sha256.GetHashAndReset();
    }
}
