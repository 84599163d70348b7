using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Campaigns;

/// <summary>
/// Admits a <c>POST /campaigns</c> only when what its Content-Length says it will cost fits in
/// <see cref="IntakeMemoryBudget"/>, and answers 503 with <c>Retry-After</c> otherwise, before a byte of its body is
/// read. The reservation it takes is the request's <see cref="IntakeReservation"/> feature: the body's reader grows it
/// as the bytes arrive.
/// </summary>
internal sealed class IntakeMemoryFilter(IntakeMemoryBudget budget) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        using var reservation = budget.TryAdmit(http.Request.ContentLength);
        if (reservation is null)
        {
            return Busy(http.Response, read: false);
        }

        // Given back when the handler returns or throws (a client hanging up mid-body included): by then the campaign
        // is published or dropped, and what is left to write is the small answer.
        http.Features.Set(reservation);
        return await next(context);
    }

    /// <summary>The 503 for a POST that does not fit in the budget, before its body is read or part-way through it.</summary>
    public static ProblemHttpResult Busy(HttpResponse response, bool read)
    {
        // The body is not read to its end: the connection cannot be reused. A client that sent Expect: 100-continue and
        // is refused before the read never sends it.
        response.Headers.Connection = "close";
        response.Headers.RetryAfter = CampaignsApi.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            statusCode: StatusCodes.Status503ServiceUnavailable,
            title: "The Front is busy",
            detail: "Campaigns under way hold all the memory this Front gives to campaigns being read (Front__MaxIntakeMemoryBytes). " +
                (read ? "The rest of this body was not read, and nothing was enqueued" : "Nothing was read or enqueued") +
                $"; retry in {CampaignsApi.RetryAfterSeconds} s, or post to another Front.");
    }
}
