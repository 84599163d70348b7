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
        var (field, message) = JsonError(e);
        return Invalid(field, message, title);
    }

    /// <summary>The field a serializer's failure is about (its path, or the body) and what was wrong, in the request's terms.</summary>
    public static (string Field, string Message) JsonError(JsonException e) =>
        (string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.'), JsonErrorMessage(e));

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
        var core = InRequestTerms(cut > 0 ? message[..cut] : message, e.Path);
        return e.LineNumber is { } line ? $"{core} (line {line + 1}, byte {e.BytePositionInLine + 1})" : core;
    }

    private const string NotConverted = "The JSON value could not be converted to ";

    /// <summary>The serializer says which .NET type it could not fill; a caller knows its request, not Bulk's classes.</summary>
    private static string InRequestTerms(string message, string? path)
    {
        var where = string.IsNullOrEmpty(path) ? "$" : path;
        if (message.StartsWith(NotConverted, StringComparison.Ordinal))
        {
            return $"{where}: expected {Expected(message[NotConverted.Length..].TrimEnd('.'))}.";
        }

        // Any other message that names a type ("… not in a supported DateTimeOffset format", say) is reworded whole.
        return message.Contains("System.", StringComparison.Ordinal) || message.Contains("Bulk.", StringComparison.Ordinal)
            ? $"{where}: this value is not of the expected kind."
            : message;
    }

    private static string Expected(string type) => type switch
    {
        _ when type.Contains("CampaignRequest", StringComparison.Ordinal) => "a campaign object, { \"from\": ..., \"subject\": ..., \"recipients\": [...] }",
        _ when type.Contains("RecipientInput]", StringComparison.Ordinal) => "an array of recipients",
        _ when type.Contains("RecipientInput", StringComparison.Ordinal) => "a string or an object",
        _ when type.Contains("List`1", StringComparison.Ordinal) || type.EndsWith("[]", StringComparison.Ordinal) => "an array",
        _ when type.Contains("Dictionary`2[System.String,System.String]", StringComparison.Ordinal) => "an object whose values are strings",
        _ when type.Contains("Dictionary`2", StringComparison.Ordinal) => "an object",
        _ when type.Contains("System.String", StringComparison.Ordinal) => "a string",
        _ when type.Contains("System.Boolean", StringComparison.Ordinal) => "true or false",
        _ when type.Contains("System.DateTime", StringComparison.Ordinal) => "a date and time such as 2026-01-31T09:00:00Z",
        _ when type.Contains("System.Int", StringComparison.Ordinal) || type.Contains("System.UInt", StringComparison.Ordinal)
            || type.Contains("System.Double", StringComparison.Ordinal) || type.Contains("System.Decimal", StringComparison.Ordinal) => "a number",
        _ => "an object",
    };
}
