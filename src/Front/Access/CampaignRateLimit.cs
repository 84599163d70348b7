using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;

namespace Bulk.Front.Access;

/// <summary>How many campaigns one caller may post (<c>Front__CampaignsPerMinute</c>): a token bucket per API key.</summary>
/// <remarks>
/// A caller may post a burst of up to the per-minute figure at once, then one more as each token comes back. A refused
/// POST is answered 429 with Retry-After before its body is read, so a flood costs the Front next to nothing.
/// </remarks>
public static class CampaignRateLimit
{
    public const string Policy = "campaigns";

    public static IServiceCollection AddCampaignRateLimit(this IServiceCollection services, int perMinute)
    {
        services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(Policy, http =>
            {
                var caller = http.User.Identity?.Name ?? "unknown";
                return perMinute == 0
                    ? RateLimitPartition.GetNoLimiter(caller)
                    : RateLimitPartition.GetTokenBucketLimiter(caller, _ => Bucket(perMinute));
            });
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                var http = context.HttpContext;
                var wait = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
                http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                http.Response.Headers.Connection = "close";
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many campaigns",
                        Detail = $"At most {perMinute} campaigns a minute per API key (Front__CampaignsPerMinute); retry in {seconds} s.",
                    },
                });
            };
        });
        return services;
    }

    /// <summary>A bucket as deep as a minute's allowance, refilled evenly (per second, or a token every few seconds).</summary>
    private static TokenBucketRateLimiterOptions Bucket(int perMinute) => new()
    {
        TokenLimit = perMinute,
        TokensPerPeriod = Math.Max(1, perMinute / 60),
        ReplenishmentPeriod = perMinute >= 60 ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(60.0 / perMinute),
        QueueLimit = 0,
        AutoReplenishment = true,
    };
}
