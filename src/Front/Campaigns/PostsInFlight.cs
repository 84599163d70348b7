using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Campaigns;

/// <summary>
/// How many <c>POST /campaigns</c> one caller may have under way at once (<c>Front__MaxPostsInFlightPerKey</c>): a
/// concurrency limit per API key (per client address without keys), the name the caller was authenticated with.
/// </summary>
/// <remarks>
/// A POST under way holds a connection and what it sent of the intake memory until its body is read (or its deadline,
/// <c>Front__BodyDeadlineSeconds</c>, passes) and its campaign is published. The per-minute rate limit counts POSTs as
/// they begin, so slow ones pile up under it; this caps the pile per caller, so that one caller's slow uploads leave
/// the rest of the Front to everyone else.
/// </remarks>
public sealed class PostsInFlight(IOptions<FrontOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> limiter = PartitionedRateLimiter.Create<string, string>(caller =>
        options.Value.MaxPostsInFlightPerKey == 0
            ? RateLimitPartition.GetNoLimiter(caller)
            : RateLimitPartition.GetConcurrencyLimiter(caller, _ => new ConcurrencyLimiterOptions
            {
                PermitLimit = options.Value.MaxPostsInFlightPerKey,
                QueueLimit = 0,
            }));

    /// <summary>A slot of <paramref name="caller"/>'s, to dispose when the POST ends; null when all are taken.</summary>
    public IDisposable? TryEnter(string caller)
    {
        var lease = limiter.AttemptAcquire(caller);
        if (lease.IsAcquired)
        {
            return lease;
        }

        lease.Dispose();
        return null;
    }

    public void Dispose() => limiter.Dispose();
}

/// <summary>Answers a <c>POST /campaigns</c> 429 with <c>Retry-After</c>, before its body is read, when its caller has
/// <c>Front__MaxPostsInFlightPerKey</c> POSTs under way already.</summary>
internal sealed class PostsInFlightFilter(PostsInFlight inFlight, IOptions<FrontOptions> options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        using var slot = inFlight.TryEnter(http.User.Identity?.Name ?? "unknown");
        if (slot is null)
        {
            var limit = options.Value.MaxPostsInFlightPerKey;
            http.Response.Headers.Connection = "close"; // the body stays unread
            http.Response.Headers.RetryAfter = CampaignsApi.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.Problem(
                statusCode: StatusCodes.Status429TooManyRequests,
                title: "Too many campaigns under way",
                detail: $"This API key has {limit} campaigns being posted already, at most {limit} at once (Front__MaxPostsInFlightPerKey). " +
                    $"Nothing was read or enqueued; retry in {CampaignsApi.RetryAfterSeconds} s, once one of them has been answered.",
                extensions: new Dictionary<string, object?> { ["setting"] = "Front__MaxPostsInFlightPerKey", ["limit"] = limit });
        }

        return await next(context);
    }
}
