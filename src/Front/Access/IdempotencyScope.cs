using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;

namespace Bulk.Front.Access;

/// <summary>Whose an <c>Idempotency-Key</c> is: keys are scoped per API key, so the same key from two API keys is two campaigns.</summary>
public static class IdempotencyScope
{
    /// <summary>The claim the API key handler gives a caller that presented a key.</summary>
    public const string ClaimType = "bulk:idempotency-scope";

    /// <summary>A digest of the API key itself, not its place in the configuration: every Front agrees on it whatever
    /// order its keys are listed in, and the stream holds no key.</summary>
    public static string OfApiKey(string apiKey) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"bulk idempotency scope\n{apiKey}")))[..32];

    /// <summary>The caller's scope; empty without API keys (every caller is on this machine).</summary>
    public static string Of(ClaimsPrincipal user) => user.FindFirst(ClaimType)?.Value ?? "";
}
