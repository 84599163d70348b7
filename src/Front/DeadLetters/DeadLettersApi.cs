using Bulk.Broker;
using Bulk.Front.Access;
using Bulk.Front.Broker;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.DeadLetters;

/// <summary>The parking lot as a look finds it.</summary>
/// <param name="Count">Messages parked.</param>
/// <param name="Complete">False when there were more than <see cref="DeadLetterReplay.LookLimit"/>: the rest are not in <paramref name="Campaigns"/>.</param>
/// <param name="Campaigns">Per campaign, the oldest parked first.</param>
/// <param name="Unreadable">Messages that are not jobs: a replay leaves them parked.</param>
public sealed record DeadLetterSummary(uint Count, bool Complete, IReadOnlyList<ParkedCampaign> Campaigns, int Unreadable);

/// <summary>What one campaign has in the parking lot.</summary>
/// <param name="OldestParkedAt">When its oldest parked job was parked; absent for jobs parked by an earlier version.</param>
/// <param name="LastReason">Why its most recently parked job was parked.</param>
/// <param name="Status">The campaign's status; absent when no ledger knows the campaign any more.</param>
/// <param name="OnReplay">What a replay does with its jobs: <c>replay</c>, <c>drop</c> (the campaign is cancelled) or
/// <c>keep</c> parked (the campaign is forgotten).</param>
public sealed record ParkedCampaign(string CampaignId, int Jobs, int Recipients, DateTimeOffset? OldestParkedAt, DateTimeOffset? NewestParkedAt,
    string? LastReason, string? Status, string OnReplay)
{
    public const string Replay = "replay";
    public const string Drop = "drop";
    public const string Keep = "keep";
}

/// <summary>Jobs and the recipients in them.</summary>
public sealed record ParkedCount(int Jobs, int Recipients)
{
    public ParkedCount Plus(int recipients) => new(Jobs + 1, Recipients + recipients);
}

/// <param name="Jobs">Moved back to work.</param>
/// <param name="Recipients">In the jobs moved back to work.</param>
/// <param name="LeftUnreadable">Messages that are not jobs: they stay parked.</param>
/// <param name="Cancelled">Jobs of cancelled campaigns: dropped from the parking lot unsent, their recipients staying failed.</param>
/// <param name="Forgotten">Jobs of campaigns no ledger knows any more (<c>History__SummaryDays</c>): refused, they stay parked.</param>
public sealed record ReplayResult(int Jobs, int Recipients, int LeftUnreadable, ParkedCount Cancelled, ParkedCount Forgotten);

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
        group.MapGet("/", Summarize)
            .WithSummary("What is parked, per campaign")
            .WithDescription("Jobs in `bulk.dead` (they failed every retry tier, or broke off), per campaign: how many jobs and " +
                "recipients, since when, the last reason, the campaign's status, and what a replay would do with them. " +
                "Looking moves nothing. Needs an admin key.");
        group.MapPost("/replay", Replay)
            .WithSummary("Put the parked jobs back to work")
            .WithDescription("Moves each parked job back to the work queue, one at a time (confirmed, then acked), so a retry after a 503 is safe. " +
                "Recipients already delivered are skipped when a Worker takes the job. A job of a cancelled campaign is dropped " +
                "(its recipients stay failed); one of a campaign no longer known (`History__SummaryDays`) stays parked. Both are counted in the answer. Needs an admin key.");
        return group;
    }

    private static async Task<Results<Ok<DeadLetterSummary>, ProblemHttpResult>> Summarize(DeadLetterReplay replay, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await replay.SummarizeAsync(ct));
        }
        catch (Exception e) when (IsBrokerFailure(e, ct))
        {
            return BrokerProblem.ServiceUnavailable("Broker unavailable", "The parking lot could not be read; retry later.");
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
