using System.Text.Json;
using Bulk.Front.Broker;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Campaigns;

public static partial class CampaignsApi
{
    /// <summary>Seconds a client is told to wait before it retries after a 503.</summary>
    public const int RetryAfterSeconds = 5;

    public static RouteGroupBuilder MapCampaigns(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/campaigns");
        group.MapPost("/", PostCampaign);
        return group;
    }

    /// <summary>Validates the campaign, enqueues it whole, answers 202 and closes the connection.</summary>
    internal static async Task<Results<Accepted<CampaignAccepted>, ValidationProblem, ProblemHttpResult>> PostCampaign(
        HttpContext http, CampaignValidator validator, CampaignPublisher publisher, ILoggerFactory loggers)
    {
        // The old "answer then keep working" trick, done properly: the work is on the broker, the client is free.
        http.Response.Headers.Connection = "close";

        if (!http.Request.HasJsonContentType())
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "Unsupported media type",
                detail: $"Send the campaign as application/json (got '{http.Request.ContentType ?? "none"}').");
        }

        CampaignRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Request.Body, FrontJson.Default.CampaignRequest, http.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "Body too large",
                detail: "The campaign body is larger than Front__MaxBodyBytes allows.");
        }
        catch (JsonException e)
        {
            var field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { [field] = [JsonErrorMessage(e)] },
                title: "The body is not a valid campaign");
        }

        if (request is null)
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { ["body"] = ["A campaign object is required."] },
                title: "The body is not a valid campaign");
        }

        var id = Guid.CreateVersion7().ToString("N");
        var result = validator.Validate(request, id);
        if (!result.IsValid)
        {
            return TypedResults.ValidationProblem(result.Errors, title: "The campaign has invalid fields");
        }

        try
        {
            await publisher.PublishAsync(result.Job!);
        }
        catch (BrokerUnavailableException e)
        {
            http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "The campaign was not accepted",
                detail: $"{e.Message} Nothing was enqueued; retry later.");
        }

        LogAccepted(loggers.CreateLogger("Bulk.Front.Campaigns"), id, result.Job!.Recipients.Count, result.DuplicatesDropped);
        return TypedResults.Accepted(
            $"/campaigns/{id}",
            new CampaignAccepted(id, "queued", result.Job.Recipients.Count, result.DuplicatesDropped));
    }

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
}
