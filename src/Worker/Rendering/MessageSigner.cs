using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Cryptography;

namespace Bulk.Worker.Rendering;

/// <summary>DKIM-signs each rendered message when a key is configured, so receivers can tell our mail from forgeries.</summary>
public sealed partial class MessageSigner
{
    /// <summary>The fields receivers check (Gmail and Yahoo want List-Unsubscribe signed for one-click unsubscribe).</summary>
    /// <remarks>
    /// MimeKit puts every name given here in <c>h=</c> and hashes only the fields present. A name in <c>h=</c> without its
    /// field is legal (RFC 6376 §5.4) and means a later hop cannot add, say, a Reply-To of its own without breaking the
    /// signature, so the list is fixed rather than trimmed to the message. The fields a message always has and that a
    /// forger would most like to add a second copy of (From, Subject, the unsubscribe link) are named twice
    /// ("oversigned"): the second, empty instance covers a copy added above the signed one.
    /// </remarks>
    private static readonly string[] SignedHeaders =
    [
        "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
        "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post",
        "From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post",
    ];

    private readonly DkimSigner? signer;

    public MessageSigner(IOptions<DkimOptions> options, ILogger<MessageSigner> logger)
    {
        var dkim = options.Value;
        if (!dkim.Enabled)
        {
            return;
        }

        // Validation loaded this key moments ago; failing here would mean the file changed in between.
        if (!dkim.TryLoadKey(out var rsa, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var bits = rsa!.KeySize;
        using (rsa)
        {
            signer = new PlatformRsaDkimSigner(rsa, dkim.Domain!, dkim.Selector!)
            {
                HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
                BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            };
        }

        LogSigning(logger, dkim.Domain!, dkim.Selector!, bits);
    }

    /// <summary>Adds a DKIM-Signature header; nothing when DKIM is not configured. The message must not change afterwards.</summary>
    public void Sign(MimeMessage message)
    {
        if (signer is null)
        {
            return;
        }

        // MailKit leaves a signed message's encoding alone, so the body is encoded here, before it is hashed: 7-bit
        // because the relay's 8BITMIME support is not known yet. This also adds the MIME-Version that is signed.
        message.Prepare(EncodingConstraint.SevenBit);
        signer.Sign(message, SignedHeaders);
    }

    [LoggerMessage(LogLevel.Information, "Signing messages with DKIM as d={Domain} s={Selector} ({Bits}-bit RSA, relaxed/relaxed)")]
    private static partial void LogSigning(ILogger logger, string domain, string selector, int bits);
}
