using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Bulk.Broker.Suppressions;

/// <summary>The per-recipient token of an unsubscribe link: the campaign and address, signed with HMAC-SHA256.</summary>
/// <remarks>
/// Nothing needs to be stored to check it: the token carries what it is about, and only a holder of the secret can
/// make one. The signature is cut to 128 bits, far beyond guessing, to keep links short.
/// </remarks>
public static class UnsubscribeToken
{
    private const int SignatureBytes = 16;

    public static string Create(string secret, string campaignId, string email)
    {
        var payload = Encoding.UTF8.GetBytes($"{campaignId}\n{email}");
        return $"{Base64Url.EncodeToString(payload)}.{Base64Url.EncodeToString(Sign(secret, payload))}";
    }

    /// <summary>Reads a token made with <paramref name="secret"/>; false for anything else, altered or not.</summary>
    public static bool TryRead(string secret, string token, out string campaignId, out string email)
    {
        campaignId = email = "";
        var dot = token.IndexOf('.');
        if (dot <= 0 || token.Length > 2048)
        {
            return false;
        }

        byte[] payload, signature;
        try
        {
            payload = Base64Url.DecodeFromChars(token.AsSpan(0, dot));
            signature = Base64Url.DecodeFromChars(token.AsSpan(dot + 1));
        }
        catch (FormatException)
        {
            return false;
        }

        if (signature.Length != SignatureBytes || !CryptographicOperations.FixedTimeEquals(signature, Sign(secret, payload)))
        {
            return false;
        }

        var text = Encoding.UTF8.GetString(payload);
        var newline = text.IndexOf('\n');
        if (newline <= 0 || newline == text.Length - 1)
        {
            return false;
        }

        campaignId = text[..newline];
        email = text[(newline + 1)..];
        return true;
    }

    private static byte[] Sign(string secret, byte[] payload) =>
        HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), payload)[..SignatureBytes];
}
