using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>Limits the wrong API keys one client address may try (<c>Front__WrongKeysPerMinute</c>): past them, 429 with Retry-After.</summary>
/// <remarks>
/// Each 401 to a request that carried a key takes a token from its address's bucket. While the bucket is empty, every
/// request from that address that carries a key is answered 429 before the key is looked at, the right key included:
/// otherwise a guesser would still learn which guess was right. Requests without a key (health, the page) are left alone.
/// Buckets that are full again are dropped by the limiter, so addresses that stopped guessing cost nothing.
/// </remarks>
public sealed class WrongKeyThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<IPAddress>? limiter;
    private readonly int perMinute;

    public WrongKeyThrottle(IOptions<EdgeOptions> options, ApiKeys keys)
    {
        perMinute = options.Value.WrongKeysPerMinute;
        // A keyless Front answers no 401: it has no keys to guess.
        limiter = perMinute == 0 || keys.LoopbackOnly ? null
            : PartitionedRateLimiter.Create<IPAddress, IPAddress>(address => RateLimitPartition.GetTokenBucketLimiter(address, _ => new()
            {
                TokenLimit = perMinute,
                TokensPerPeriod = Math.Max(1, perMinute / 60),
                ReplenishmentPeriod = perMinute >= 60 ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(60.0 / perMinute),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    internal async Task ThrottleAsync(HttpContext http, RequestDelegate next)
    {
        if (limiter is null || !http.Request.Headers.ContainsKey("Authorization"))
        {
            await next(http);
            return;
        }

        var address = http.Connection.RemoteIpAddress ?? IPAddress.None;
        // Asking for no token says whether any is left, and if not, when one will be.
        using (var lease = limiter.AttemptAcquire(address, 0))
        {
            if (!lease.IsAcquired)
            {
                var wait = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await EdgeProblems.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many wrong API keys",
                    $"At most {perMinute} wrong API keys a minute from one client address (Front__WrongKeysPerMinute); retry in {seconds} s.");
                return;
            }
        }

        await next(http);
        if (http.Response.StatusCode == StatusCodes.Status401Unauthorized)
        {
            limiter.AttemptAcquire(address).Dispose();
        }
    }

    public void Dispose() => limiter?.Dispose();
}
