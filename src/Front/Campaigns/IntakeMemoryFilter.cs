using System.Globalization;

namespace Bulk.Front.Campaigns;

/// <summary>
/// Admits a <c>POST /campaigns</c> only when its estimated memory fits in <see cref="IntakeMemoryBudget"/>, and answers
/// 503 with <c>Retry-After</c> otherwise, before a byte of its body is read.
/// </summary>
internal sealed class IntakeMemoryFilter(IntakeMemoryBudget budget) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var estimate = budget.EstimateFor(http.Request.ContentLength);
        using var reservation = budget.TryReserve(estimate);
        if (reservation is null)
        {
            // The body stays unread: the connection cannot be reused. A client that sent Expect: 100-continue never sends it.
            http.Response.Headers.Connection = "close";
            http.Response.Headers.RetryAfter = CampaignsApi.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.Problem(
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "The Front is busy",
                detail: "Campaigns under way hold all the memory this Front gives to campaigns being read (Front__MaxIntakeMemoryBytes). " +
                    $"Nothing was read or enqueued; retry in {CampaignsApi.RetryAfterSeconds} s, or post to another Front.");
        }

        // Given back when the handler returns or throws (a client hanging up mid-body included): by then the campaign
        // is published or dropped, and what is left to write is the small answer.
        return await next(context);
    }
}
