using Bulk.Contracts;
using Bulk.Front.Campaigns;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Suppressions;

/// <summary>What <c>POST /suppressions</c> takes: addresses to suppress, and an optional note kept with them.</summary>
public sealed record SuppressionRequest(List<string?>? Emails, string? Note);

/// <summary>A page of the suppression list.</summary>
public sealed record SuppressionPage(int Count, int Offset, int Limit, IReadOnlyList<Suppression> Suppressions);

/// <summary>The answer to <c>POST /suppressions</c>.</summary>
public sealed record SuppressionsAdded(int Added, int AlreadySuppressed);

/// <summary><c>GET/POST/DELETE /suppressions</c>: the addresses no campaign mails, kept on the suppressions stream.</summary>
public static class SuppressionsApi
{
    public const int MaxPerRequest = 10_000;
    public const int MaxPage = 1000;

    public static IEndpointRouteBuilder MapSuppressions(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/suppressions");
        group.MapGet("/", ListAsync);
        group.MapGet("/{email}", FindAsync);
        group.MapPost("/", AddAsync);
        group.MapDelete("/{email}", RemoveAsync);
        return app;
    }

    internal static async Task<Results<Ok<SuppressionPage>, ValidationProblem>> ListAsync(SuppressionLog log, int? offset, int? limit)
    {
        await WhenCaughtUpAsync(log);
        var from = offset ?? 0;
        var take = limit ?? 100;
        if (CampaignsApi.CheckPage(from, take, MaxPage) is { } invalid)
        {
            return invalid;
        }

        var (page, count) = log.List.Page(from, take);
        return TypedResults.Ok(new SuppressionPage(count, from, take, page));
    }

    internal static async Task<Results<Ok<Suppression>, ProblemHttpResult>> FindAsync(string email, SuppressionLog log)
    {
        await WhenCaughtUpAsync(log);
        return log.List.Find(email) is { } found ? TypedResults.Ok(found) : NotSuppressed(email);
    }

    internal static async Task<Results<Ok<SuppressionsAdded>, ValidationProblem, ProblemHttpResult>> AddAsync(
        SuppressionRequest? request, SuppressionLog log, CancellationToken cancellationToken)
    {
        if (request?.Emails is not { Count: > 0 } emails)
        {
            return Invalid("emails", "At least one address is required: { \"emails\": [\"a@example.com\"] }.");
        }

        if (emails.Count > MaxPerRequest)
        {
            return Invalid("emails", $"At most {MaxPerRequest} addresses per request; this one has {emails.Count}.");
        }

        if (request.Note is { Length: > 500 })
        {
            return Invalid("note", "A note is at most 500 characters.");
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        for (var i = 0; i < emails.Count; i++)
        {
            if (emails[i] is not { } email || !CampaignValidator.IsRecipientAddress(email.Trim()))
            {
                errors[$"emails[{i}]"] = [$"'{emails[i]}' is not an email address."];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, title: "Invalid addresses");
        }

        await WhenCaughtUpAsync(log);
        var now = DateTimeOffset.UtcNow;
        var fresh = emails.Select(e => e!.Trim()).Distinct(StringComparer.OrdinalIgnoreCase).Where(e => log.List.Find(e) is null).ToList();
        var events = fresh.Select(e => new SuppressionEvent(SuppressionTypes.Suppressed, e, now, SuppressionReasons.Operator, Detail: request.Note)).ToList();
        if (await RecordAsync(log, events, cancellationToken) is { } failed)
        {
            return failed;
        }

        return TypedResults.Ok(new SuppressionsAdded(fresh.Count, emails.Count - fresh.Count));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RemoveAsync(string email, SuppressionLog log, CancellationToken cancellationToken)
    {
        await WhenCaughtUpAsync(log);
        if (log.List.Find(email) is not { } found)
        {
            return NotSuppressed(email);
        }

        var removed = new SuppressionEvent(SuppressionTypes.Unsuppressed, found.Email, DateTimeOffset.UtcNow);
        return await RecordAsync(log, [removed], cancellationToken) is { } failed ? failed : TypedResults.NoContent();
    }

    /// <summary>Writes to the stream and applies here; a problem when the broker did not confirm.</summary>
    internal static async Task<ProblemHttpResult?> RecordAsync(SuppressionLog log, IReadOnlyList<SuppressionEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return null;
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await log.RecordAsync(events, timeout.Token);
            return null;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not recorded",
                detail: $"The broker did not record the change: {e.Message} Nothing changed; retry later.");
        }
    }

    private static Task WhenCaughtUpAsync(SuppressionLog log) => CampaignsApi.WhenCaughtUpAsync(log);

    private static ProblemHttpResult NotSuppressed(string email) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound, title: "Not suppressed", detail: $"'{email}' is not on the suppression list.");

    private static ValidationProblem Invalid(string field, string message) => CampaignsApi.Invalid(field, message);
}
