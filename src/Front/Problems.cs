using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front;

/// <summary>The RFC 9457 answers more than one of the Front's endpoints gives, each naming what is wrong.</summary>
public static class Problems
{
    /// <summary>A 400 naming the one field that is wrong.</summary>
    public static ValidationProblem Invalid(string field, string message, string title = "Invalid request") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: title);

    /// <summary>A 400 for a body the serializer could not read, naming where it stopped.</summary>
    public static ValidationProblem InvalidJson(JsonException e, string title)
    {
        var field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
        return Invalid(field, JsonErrorMessage(e), title);
    }

    /// <summary>A 404 for a campaign id this Front does not know.</summary>
    public static ProblemHttpResult UnknownCampaign(string id) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound, title: "Unknown campaign", detail: $"No campaign '{id}' is known.");

    /// <summary>The offset and limit of a paged list, or the problem with them.</summary>
    public static ValidationProblem? CheckPage(int offset, int limit, int max) =>
        offset < 0 ? Invalid("offset", "The offset is 0 or more.")
        : limit < 1 || limit > max ? Invalid("limit", $"The limit is between 1 and {max}.")
        : null;

    // System.Text.Json appends its own "Path: ... | LineNumber: ..." to the message; the field already names the path.
    private static string JsonErrorMessage(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var core = cut > 0 ? message[..cut] : message;
        return e.LineNumber is { } line ? $"{core} (line {line + 1}, byte {e.BytePositionInLine + 1})" : core;
    }
}
