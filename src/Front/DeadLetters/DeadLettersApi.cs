using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.DeadLetters;

public sealed record DeadLetterCount(uint Count);

public sealed record ReplayResult(int Jobs, int Recipients, int LeftUnreadable);

public static class DeadLettersApi
{
    /// <summary>The parking lot: how much is in it, and a way to put it back to work.</summary>
    public static RouteGroupBuilder MapDeadLetters(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/dead-letters");
        group.MapGet("/", async (DeadLetterReplay replay, CancellationToken ct) => TypedResults.Ok(new DeadLetterCount(await replay.CountAsync(ct))));
        group.MapPost("/replay", Replay);
        return group;
    }

    private static async Task<Results<Ok<ReplayResult>, ProblemHttpResult>> Replay(DeadLetterReplay replay, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await replay.ReplayAsync(ct));
        }
        catch (Broker.BrokerUnavailableException e)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Broker unavailable", detail: e.Message);
        }
    }
}
