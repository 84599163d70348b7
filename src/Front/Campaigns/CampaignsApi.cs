using System.Diagnostics;
using System.Globalization;
using System.Security.Claims;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Access;
using Bulk.Front.Broker;
using Bulk.Templates;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Campaigns;

/// <summary><c>/campaigns</c>: post a campaign, list them, follow one, read its failures, pause, resume or cancel it.</summary>
public static class CampaignsApi
{
    /// <summary>Seconds a client is told to wait before it retries after a 503.</summary>
    public const int RetryAfterSeconds = 5;

    public const int MaxFailuresPage = 1000;

    public static IServiceCollection AddCampaigns(this IServiceCollection services)
    {
        services.AddLiquidSandbox();
        services.AddSingleton<CampaignValidator>();
        services.AddSingleton<CampaignReader>();
        // Trial renderings take turns by caller: one key's slow templates cannot take every core from another's.
        services.AddSingleton(new RenderTurns());
        services.AddSingleton<IdempotencyKeyLock>();
        services.AddSingleton<CampaignPublisher>();
        services.AddSingleton<IntakeObserver>();
        services.AddSingleton<CampaignIntake>();
        services.AddSingleton<IntakeMemoryBudget>();
        services.AddSingleton<PostsInFlight>();
        return services;
    }

    public static RouteGroupBuilder MapCampaigns(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/campaigns").RequireApiKey().WithTags("Campaigns");

        // A group of its own, since only posting is rate limited: a refused POST is answered 429 before its body is read.
        group.MapGroup("").RequireRateLimiting(CampaignRateLimit.Policy).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .MapPost("/", PostCampaign)
            // Before the body is read: a caller with too many POSTs under way is a 429, then a POST that does not fit in
            // the memory budget is a 503, not a campaign half read.
            .AddEndpointFilter<PostsInFlightFilter>()
            .AddEndpointFilter<IntakeMemoryFilter>()
            .ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Post a campaign")
            .WithDescription(CampaignDescriptions.Post)
            .AddOpenApiOperationTransformer(CampaignDescriptions.DescribePostAsync);

        // The rest answers from the ledger, which a Front that just started is still reading.
        var fromLedger = group.MapGroup("").WaitsUntilCaughtUp(services => services.GetRequiredService<OutcomeLog>());
        fromLedger.MapGet("/", ListCampaigns)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .WithSummary("List the most recent campaigns")
            .WithDescription("The most recent first, at most `limit` (1 to 500, 50 by default; a number outside is brought within): " +
                "the API key's own campaigns, or every campaign for an admin key.");
        fromLedger.MapGet("/{id}", GetCampaign)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("A campaign's status")
            .WithDescription("Its status and counts, which add up to its total. Another API key's campaign is a 404, as an unknown one.");
        fromLedger.MapGet("/{id}/failures", GetFailures)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("A campaign's failed recipients")
            .WithDescription($"A page of the recipients that failed for good, with the relay's reply: `offset` from 0, `limit` 1 to {MaxFailuresPage} (100 by default).");
        fromLedger.MapCampaignEvents();
        fromLedger.MapCampaignControl();
        return group;
    }

    /// <summary>Validates the campaign, enqueues it whole, answers 202 and closes the connection.</summary>
    internal static async Task<Results<Accepted<CampaignAccepted>, ValidationProblem, ProblemHttpResult>> PostCampaign(
        HttpContext http, CampaignReader reader, CampaignIntake intake)
    {
        // The old "answer then keep working" trick, done properly: the work is on the broker, the client is free.
        http.Response.Headers.Connection = "close";
        return await reader.ReadAsync(http.Request, http.RequestAborted) switch
        {
            PostedCampaign.Invalid invalid => invalid.Problem,
            PostedCampaign.Refused refused => refused.Problem,
            PostedCampaign.Valid campaign => await intake.SubmitAsync(campaign) switch
            {
                IntakeResult.Accepted a => AcceptedAnswer(a.CampaignId, CampaignLedger.Statuses.Queued, a.Total, a.DuplicatesDropped),
                IntakeResult.Replayed r => AcceptedAnswer(r.CampaignId, r.Status, r.Total, r.DuplicatesDropped),
                IntakeResult.KeyReused reused => TypedResults.Problem(
                    statusCode: StatusCodes.Status422UnprocessableEntity,
                    title: "Idempotency key reused",
                    detail: $"The key '{reused.Key}' was used for campaign {reused.CampaignId} with a different body."),
                IntakeResult.Unavailable => RetryLater(http.Response),
                IntakeResult.Unknown unknown => NotKnown(http.Response, unknown),
                IntakeResult.TooLarge large => TooLarge(large),
                _ => throw new UnreachableException(),
            },
            _ => throw new UnreachableException(),
        };
    }

    // Another tenant's campaign is answered as one that does not exist (404, not 403): an id tells nothing of it.
    internal static Ok<CampaignList> ListCampaigns(OutcomeLog outcomes, int? limit, ClaimsPrincipal user) =>
        TypedResults.Ok(new CampaignList(outcomes.Ledger.Recent(Math.Clamp(limit ?? 50, 1, 500), Tenants.ViewOf(user))));

    internal static Results<Ok<CampaignStatus>, ProblemHttpResult> GetCampaign(string id, OutcomeLog outcomes, ClaimsPrincipal user) =>
        outcomes.Ledger.Find(id, Tenants.ViewOf(user)) is { } status ? TypedResults.Ok(status) : Problems.UnknownCampaign(id);

    internal static Results<Ok<FailurePage>, ValidationProblem, ProblemHttpResult> GetFailures(
        string id, OutcomeLog outcomes, int? offset, int? limit, ClaimsPrincipal user)
    {
        var ledger = outcomes.Ledger;
        var from = offset ?? 0;
        var take = limit ?? 100;
        if (Problems.CheckPage(from, take, MaxFailuresPage) is { } invalid)
        {
            return invalid;
        }

        return ledger.Failures(id, from, take, Tenants.ViewOf(user)) is var (page, count)
            ? TypedResults.Ok(new FailurePage(id, count, from, take, page))
            : Problems.UnknownCampaign(id);
    }

    /// <summary>A 503 saying when to try again: nothing was enqueued.</summary>
    private static ProblemHttpResult RetryLater(HttpResponse response)
    {
        response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return BrokerProblem.ServiceUnavailable("The campaign was not accepted", "Nothing was enqueued; retry later.");
    }

    /// <summary>A 503 that says the truth: the campaign may be on the broker, and how the client learns which.</summary>
    private static ProblemHttpResult NotKnown(HttpResponse response, IntakeResult.Unknown unknown)
    {
        response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        var how = unknown.Keyed
            ? "Retry this request with the same Idempotency-Key: the retry settles it, and the campaign is sent at most once."
            : $"GET /campaigns/{unknown.CampaignId} shows it once a Worker sends it; posting it again may send it twice (an Idempotency-Key makes a retry safe).";
        return TypedResults.Problem(
            statusCode: StatusCodes.Status503ServiceUnavailable,
            title: "Whether the campaign was accepted is not known",
            detail: $"{BrokerProblem.Unavailable} This Front does not know whether campaign {unknown.CampaignId} was enqueued. {how}",
            extensions: new Dictionary<string, object?> { ["campaignId"] = unknown.CampaignId });
    }

    /// <summary>413 naming the setting: a broker message holds one whole campaign, and this one is larger than the broker takes.</summary>
    private static ProblemHttpResult TooLarge(IntakeResult.TooLarge large) => TypedResults.Problem(
        statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "Campaign too large for the broker",
        detail: (large.BrokerSaid is null
            ? $"The campaign is {large.Bytes} bytes as one broker message; the broker takes at most {large.Limit} (RabbitMq__MaxMessageBytes, RabbitMQ's max_message_size)."
            : $"The broker refused the campaign's {large.Bytes} bytes ({large.BrokerSaid}); RabbitMq__MaxMessageBytes ({large.Limit}) is above RabbitMQ's max_message_size.")
            + " Nothing was enqueued: send fewer recipients or less data per campaign.",
        extensions: new Dictionary<string, object?> { ["setting"] = "RabbitMq__MaxMessageBytes", ["limit"] = large.Limit, ["bytes"] = large.Bytes });

    private static Accepted<CampaignAccepted> AcceptedAnswer(string id, string? status, int total, int duplicatesDropped) =>
        TypedResults.Accepted($"/campaigns/{id}", new CampaignAccepted(id, status ?? CampaignLedger.Statuses.Queued, total, duplicatesDropped));
}
