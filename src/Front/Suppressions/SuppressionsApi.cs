using Bulk.Broker.Suppressions;
using Bulk.Contracts.Suppressions;
using Bulk.Front.Access;
using Bulk.Front.Broker;
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
    /// <remarks>
    /// A request is one stream entry: 10,000 addresses of at most <see cref="MaxAddressLength"/> characters make at most
    /// about 15 MB even with every character escaped in JSON, under RabbitMQ's max_message_size (16 MiB since 4.0).
    /// </remarks>
    public const int MaxPerRequest = 10_000;

    /// <summary>The longest address SMTP can carry (RFC 5321: a path of 256 octets, angle brackets included).</summary>
    public const int MaxAddressLength = 254;

    public const int MaxPage = 1000;

    public static RouteGroupBuilder MapSuppressions(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/suppressions").RequireApiKey().WithTags("Suppressions")
            .WaitsUntilCaughtUp(services => services.GetRequiredService<SuppressionLog>());
        // Who unsubscribed is every tenant's business and none's alone: any key may add to the list, only an admin key
        // may read it or take an address off it.
        group.MapGet("/", List)
            .RequireAdminKey()
            .WithSummary("List the suppressed addresses")
            .WithDescription($"A page of the list: `offset` from 0, `limit` 1 to {MaxPage} (100 by default). Needs an admin key.");
        group.MapGet("/{email}", Find)
            .RequireAdminKey()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Whether an address is suppressed, and why")
            .WithDescription("Needs an admin key.");
        // The body is bound by the framework: it answers 415 to a body that is not JSON and 413 past Front__MaxBodyBytes.
        group.MapPost("/", AddAsync)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Suppress addresses")
            .WithDescription($"No campaign mails them from then on. At most {MaxPerRequest} addresses a request, recorded whole or not at all; " +
                "addresses already suppressed are counted, not added again. Any API key may add.");
        group.MapDelete("/{email}", RemoveAsync)
            .RequireAdminKey()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Take an address off the list")
            .WithDescription("Needs an admin key.");
        return group;
    }

    internal static Results<Ok<SuppressionPage>, ValidationProblem> List(SuppressionLog log, int? offset, int? limit)
    {
        var from = offset ?? 0;
        var take = limit ?? 100;
        if (Problems.CheckPage(from, take, MaxPage) is { } invalid)
        {
            return invalid;
        }

        var (page, count) = log.List.Page(from, take);
        return TypedResults.Ok(new SuppressionPage(count, from, take, page));
    }

    internal static Results<Ok<Suppression>, ProblemHttpResult> Find(string email, SuppressionLog log) =>
        log.List.Find(email) is { } found ? TypedResults.Ok(found) : NotSuppressed(email);

    internal static async Task<Results<Ok<SuppressionsAdded>, ValidationProblem, ProblemHttpResult>> AddAsync(
        SuppressionRequest? request, SuppressionLog log, CancellationToken cancellationToken)
    {
        if (request?.Emails is not { Count: > 0 } emails)
        {
            return Problems.Invalid("emails", "At least one address is required: { \"emails\": [\"a@example.com\"] }.");
        }

        if (emails.Count > MaxPerRequest)
        {
            return Problems.Invalid("emails", $"At most {MaxPerRequest} addresses per request; this one has {emails.Count}.");
        }

        if (request.Note is { Length: > 500 })
        {
            return Problems.Invalid("note", "A note is at most 500 characters.");
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        for (var i = 0; i < emails.Count; i++)
        {
            if (emails[i] is not { } email || !CampaignValidator.IsRecipientAddress(email.Trim()))
            {
                errors[$"emails[{i}]"] = [$"'{emails[i]}' is not an email address."];
            }
            else if (email.Trim().Length > MaxAddressLength)
            {
                errors[$"emails[{i}]"] = [$"An address is at most {MaxAddressLength} characters; this one has {email.Trim().Length}."];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, title: "Invalid addresses");
        }

        var now = DateTimeOffset.UtcNow;
        var fresh = emails.Select(e => e!.Trim()).Distinct(StringComparer.OrdinalIgnoreCase).Where(e => log.List.Find(e) is null).ToList();
        if (fresh.Count > 0)
        {
            // One entry for the whole request: the broker confirms all of it or none, so a 503 never hides a partial write.
            var suppressed = new SuppressionEvent(SuppressionType.Suppressed, fresh[0], now, SuppressionReasons.Operator,
                Detail: request.Note, MoreEmails: fresh.Count > 1 ? fresh[1..] : null);
            if (await RecordAsync(log, suppressed, cancellationToken) is { } failed)
            {
                return failed;
            }
        }

        return TypedResults.Ok(new SuppressionsAdded(fresh.Count, emails.Count - fresh.Count));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RemoveAsync(string email, SuppressionLog log, CancellationToken cancellationToken)
    {
        if (log.List.Find(email) is not { } found)
        {
            return NotSuppressed(email);
        }

        var removed = new SuppressionEvent(SuppressionType.Unsuppressed, found.Email, DateTimeOffset.UtcNow);
        return await RecordAsync(log, removed, cancellationToken) is { } failed ? failed : TypedResults.NoContent();
    }

    /// <summary>Writes one entry to the stream and applies it here; a problem when the broker did not confirm.</summary>
    internal static async Task<ProblemHttpResult?> RecordAsync(SuppressionLog log, SuppressionEvent change, CancellationToken cancellationToken)
    {
        try
        {
            await log.RecordAsync([change], cancellationToken);
            return null;
        }
        catch (IOException)
        {
            // The stream's writer logged the reason, which names the broker's host and port; the client is told no more.
            return BrokerProblem.ServiceUnavailable("Not recorded",
                "The change was not confirmed. A change is recorded whole or not at all; retrying the same request is safe.");
        }
    }

    private static ProblemHttpResult NotSuppressed(string email) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound, title: "Not suppressed", detail: $"'{email}' is not on the suppression list.");
}
