using System.Globalization;
using System.Text.Json;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Access;
using Bulk.Front.Broker;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Campaigns;

public static partial class CampaignsApi
{
    /// <summary>Seconds a client is told to wait before it retries after a 503.</summary>
    public const int RetryAfterSeconds = 5;

    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public const int MaxFailuresPage = 1000;

    public static RouteGroupBuilder MapCampaigns(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/campaigns");
        group.MapPost("/", PostCampaign).RequireRateLimiting(Access.CampaignRateLimit.Policy);
        group.MapGet("/", ListCampaigns);
        group.MapGet("/{id}", GetCampaign);
        group.MapGet("/{id}/failures", GetFailures);
        group.MapCampaignEvents();
        group.MapCampaignControl();
        return group;
    }

    /// <summary>Validates the campaign, enqueues it whole, answers 202 and closes the connection.</summary>
    internal static async Task<Results<Accepted<CampaignAccepted>, ValidationProblem, ProblemHttpResult>> PostCampaign(
        HttpContext http, CampaignValidator validator, AllowedSenders senders, CampaignPublisher publisher, IdempotencyGate gate,
        OutcomeLog outcomes, IOptions<FrontOptions> options, ILoggerFactory loggers)
    {
        // The old "answer then keep working" trick, done properly: the work is on the broker, the client is free.
        http.Response.Headers.Connection = "close";
        var logger = loggers.CreateLogger("Bulk.Front.Campaigns");

        if (!http.Request.HasJsonContentType())
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "Unsupported media type",
                detail: $"Send the campaign as application/json (got '{http.Request.ContentType ?? "none"}').");
        }

        var key = http.Request.Headers[IdempotencyKeyHeader].ToString();
        if (key.Length > 0 && (key.Length > 200 || key.Any(c => c is < ' ' or > '~')))
        {
            return Invalid(IdempotencyKeyHeader, "An idempotency key is 1 to 200 printable ASCII characters.");
        }

        CampaignBody body;
        try
        {
            // Read as it streams in, with no copy kept: Kestrel enforces Front__MaxBodyBytes while this reads, and the
            // body's guard refuses what can be told before the end (too many recipients, a value too large).
            body = await CampaignBody.ReadAsync(http.Request, options.Value, http.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "Body too large",
                detail: "The campaign body is larger than Front__MaxBodyBytes allows.");
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel could not read the body: broken chunked framing, fewer bytes than the Content-Length said…
            return TypedResults.Problem(statusCode: e.StatusCode, title: "The body could not be read", detail: e.Message);
        }
        catch (CampaignBodyRefusedException e)
        {
            return Invalid(e.Field, e.Message, "The campaign has invalid fields");
        }
        catch (JsonException e)
        {
            var field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            return Invalid(field, JsonErrorMessage(e), "The body is not a valid campaign");
        }

        var request = body.Request;
        if (request is null)
        {
            return Invalid("body", "A campaign object is required.", "The body is not a valid campaign");
        }

        var id = Guid.CreateVersion7().ToString("N");
        var result = validator.Validate(request, id);
        if (!result.IsValid)
        {
            return TypedResults.ValidationProblem(result.Errors, title: "The campaign has invalid fields");
        }

        if (senders.Refusals(result.Sender!, result.Job!.Template.Bounce) is { Count: > 0 } refused)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Sender not allowed",
                detail: $"This Front may send only from {senders.Describe()} (Front__AllowedSenders).",
                extensions: new Dictionary<string, object?> { ["errors"] = refused });
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        var hash = body.Hash;
        IAsyncDisposable? lease = null;
        try
        {
            if (key.Length > 0)
            {
                lease = await gate.AcquireAsync(key, timeout.Token);
                // Any Front may have taken this key before: read the stream up to now before deciding.
                await outcomes.ReadToNowAsync(timeout.Token);
                if (outcomes.Ledger.FindKey(key) is { } earlier)
                {
                    return earlier.RequestHash == hash
                        ? AcceptedAnswer(earlier.CampaignId, outcomes.Ledger.Find(earlier.CampaignId)?.Status, earlier.Total, earlier.DuplicatesDropped)
                        : TypedResults.Problem(
                            statusCode: StatusCodes.Status422UnprocessableEntity,
                            title: "Idempotency key reused",
                            detail: $"The key '{key}' was used for campaign {earlier.CampaignId} with a different body.");
                }
            }

            await publisher.PublishAsync(result.Job!);
            var accepted = new OutcomeEvent(OutcomeType.Accepted, id, DateTimeOffset.UtcNow, result.Job!.Recipients.Count,
                key.Length > 0 ? key : null, hash, DuplicatesDropped: result.DuplicatesDropped);
            await RecordAcceptedAsync(outcomes, accepted, logger);
        }
        catch (Exception e) when (e is BrokerUnavailableException or IOException or OperationCanceledException)
        {
            // The reason names the broker's host and port: it is logged where it arose, and the client is told no more.
            http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return BrokerProblem.ServiceUnavailable("The campaign was not accepted", "Nothing was enqueued; retry later.");
        }
        finally
        {
            if (lease is not null)
            {
                await lease.DisposeAsync();
            }
        }

        LogAccepted(logger, id, result.Job.Recipients.Count, result.DuplicatesDropped);
        return AcceptedAnswer(id, CampaignLedger.Statuses.Queued, result.Job.Recipients.Count, result.DuplicatesDropped);
    }

    /// <summary>The campaign is enqueued; the stream entry makes its total and key known to every process.</summary>
    private static async Task RecordAcceptedAsync(OutcomeLog outcomes, OutcomeEvent accepted, ILogger logger)
    {
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            try
            {
                await outcomes.RecordAsync([accepted], CancellationToken.None);
                return;
            }
            catch (IOException e)
            {
                LogAcceptedNotRecorded(logger, accepted.CampaignId, attempt, e.Message);
            }
        }

        // The work is on the broker and will be delivered: the client's answer is still 202, and this Front knows the
        // campaign. Elsewhere its status appears with the first outcome; only a retry with the same key elsewhere
        // could not be recognised.
        outcomes.Ledger.Apply(accepted);
    }

    internal static async Task<Ok<CampaignList>> ListCampaigns(OutcomeLog outcomes, int? limit)
    {
        await WhenCaughtUpAsync(outcomes);
        return TypedResults.Ok(new CampaignList(outcomes.Ledger.Recent(Math.Clamp(limit ?? 50, 1, 500))));
    }

    internal static async Task<Results<Ok<CampaignStatus>, ProblemHttpResult>> GetCampaign(string id, OutcomeLog outcomes)
    {
        await WhenCaughtUpAsync(outcomes);
        return outcomes.Ledger.Find(id) is { } status ? TypedResults.Ok(status) : Unknown(id);
    }

    internal static async Task<Results<Ok<FailurePage>, ValidationProblem, ProblemHttpResult>> GetFailures(
        string id, OutcomeLog outcomes, int? offset, int? limit)
    {
        await WhenCaughtUpAsync(outcomes);
        var ledger = outcomes.Ledger;
        var from = offset ?? 0;
        var take = limit ?? 100;
        if (CheckPage(from, take, MaxFailuresPage) is { } invalid)
        {
            return invalid;
        }

        return ledger.Failures(id, from, take) is var (page, count)
            ? TypedResults.Ok(new FailurePage(id, count, from, take, page))
            : Unknown(id);
    }

    /// <summary>A Front that just started rebuilds its state from a stream; give it a moment before saying "unknown".</summary>
    internal static Task WhenCaughtUpAsync<T>(EventStream<T> stream)
        where T : class => stream.WaitForStartupReplayAsync(TimeSpan.FromSeconds(10));

    /// <summary>The offset and limit of a paged list, or the problem with them.</summary>
    internal static ValidationProblem? CheckPage(int offset, int limit, int max) =>
        offset < 0 ? Invalid("offset", "The offset is 0 or more.")
        : limit < 1 || limit > max ? Invalid("limit", $"The limit is between 1 and {max}.")
        : null;

    private static Accepted<CampaignAccepted> AcceptedAnswer(string id, string? status, int total, int duplicatesDropped) =>
        TypedResults.Accepted($"/campaigns/{id}", new CampaignAccepted(id, status ?? CampaignLedger.Statuses.Queued, total, duplicatesDropped));

    internal static ProblemHttpResult Unknown(string id) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound, title: "Unknown campaign", detail: $"No campaign '{id}' is known.");

    internal static ValidationProblem Invalid(string field, string message, string title = "Invalid request") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: title);

    // System.Text.Json appends its own "Path: ... | LineNumber: ..." to the message; the field already names the path.
    private static string JsonErrorMessage(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var core = cut > 0 ? message[..cut] : message;
        return e.LineNumber is { } line ? $"{core} (line {line + 1}, byte {e.BytePositionInLine + 1})" : core;
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} accepted with {Count} recipients ({Duplicates} duplicates dropped)")]
    private static partial void LogAccepted(ILogger logger, string campaignId, int count, int duplicates);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} is enqueued but its acceptance was not recorded (attempt {Attempt}): {Reason}")]
    private static partial void LogAcceptedNotRecorded(ILogger logger, string campaignId, int attempt, string reason);
}
