using Bulk.Broker;
using Bulk.Front.Access;
using Bulk.Front.Broker;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.DeadLetters;

public sealed record DeadLetterCount(uint Count);

public sealed record ReplayResult(int Jobs, int Recipients, int LeftUnreadable);

/// <summary><c>/dead-letters</c>: the parking lot of jobs that failed every retry tier.</summary>
public static class DeadLettersApi
{
    public static IServiceCollection AddDeadLetters(this IServiceCollection services) => services.AddSingleton<DeadLetterReplay>();

    /// <summary>The parking lot: how much is in it, and a way to put it back to work.</summary>
    public static RouteGroupBuilder MapDeadLetters(this IEndpointRouteBuilder app)
    {
        // Parked jobs are every tenant's campaigns, recipients and all: an admin key's to count and replay.
        var group = app.MapGroup("/dead-letters").RequireApiKey().RequireAdminKey().WithTags("Dead letters")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/", Count)
            .WithSummary("Count the parked jobs")
            .WithDescription("Jobs in `bulk.dead`: they failed every retry tier. Needs an admin key.");
        group.MapPost("/replay", Replay)
            .WithSummary("Put the parked jobs back to work")
            .WithDescription("Moves each parked job back to the work queue, one at a time (confirmed, then acked), so a retry after a 503 is safe. " +
                "Recipients already delivered are skipped when a Worker takes the job. Needs an admin key.");
        return group;
    }

    private static async Task<Results<Ok<DeadLetterCount>, ProblemHttpResult>> Count(DeadLetterReplay replay, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(new DeadLetterCount(await replay.CountAsync(ct)));
        }
        catch (Exception e) when (IsBrokerFailure(e, ct))
        {
            return BrokerProblem.ServiceUnavailable("Broker unavailable", "The parking lot could not be counted; retry later.");
        }
    }

    private static async Task<Results<Ok<ReplayResult>, ProblemHttpResult>> Replay(DeadLetterReplay replay, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await replay.ReplayAsync(ct));
        }
        catch (Exception e) when (IsBrokerFailure(e, ct))
        {
            // Each job moves on its own (confirmed, then acked): what moved stays moved, the rest stays parked; a retry is safe.
            return BrokerProblem.ServiceUnavailable("Broker unavailable", "Jobs not yet moved stay parked; a retry is safe.");
        }
    }

    private static bool IsBrokerFailure(Exception e, CancellationToken request) =>
        e is BrokerUnavailableException or IOException or RabbitMQ.Client.Exceptions.OperationInterruptedException
        || (e is OperationCanceledException && !request.IsCancellationRequested);
}
