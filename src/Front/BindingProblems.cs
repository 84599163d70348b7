using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

namespace Bulk.Front;

/// <summary>
/// A request the framework could not bind (a JSON body of the wrong shape, a query value that is not a number) is a 400
/// naming the field in the request's terms, not an empty "Bad Request", nor one naming the parameter's .NET type.
/// </summary>
/// <remarks>
/// Minimal APIs answer a binding failure with a bare status unless told to throw (<see cref="RouteHandlerOptions.ThrowOnBadRequest"/>);
/// thrown, it comes here through the exception handler, which keeps its status (400, 413, 415).
/// </remarks>
public sealed partial class BindingProblems(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad)
        {
            return false;
        }

        var (field, message) = bad.InnerException is JsonException json ? Problems.JsonError(json)
            : ParameterFailure().Match(bad.Message) is { Success: true } m
                ? (m.Groups["name"].Value, $"expected {Kind(m.Groups["type"].Value)}, not '{m.Groups["value"].Value}'.")
            : bad.StatusCode == StatusCodes.Status415UnsupportedMediaType ? ("Content-Type", "Send the body as application/json.")
            : bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? ("body", "The body is larger than Front__MaxBodyBytes allows.")
            : ("body", "The request could not be read.");
        http.Response.StatusCode = bad.StatusCode;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
            {
                Status = bad.StatusCode,
                Title = "The request is not valid",
            },
            Exception = exception,
        });
    }

    // The framework writes the type as C# would ("int?", "Nullable<int>", "Int32"): only its kind is of use to the caller.
    private static string Kind(string type) => type.Replace("Nullable<", "", StringComparison.Ordinal).TrimEnd('?', '>').ToLowerInvariant() switch
    {
        "int" or "int32" or "long" or "int64" or "short" or "int16" or "uint" or "ulong" or "double" or "float" or "single" or "decimal" => "a number",
        "bool" or "boolean" => "true or false",
        "datetimeoffset" or "datetime" => "a date and time such as 2026-01-31T09:00:00Z",
        _ => "another value",
    };

    [GeneratedRegex("""^Failed to bind parameter "(?<type>\S+) (?<name>\w+)" from "(?<value>.*)"\.$""")]
    private static partial Regex ParameterFailure();
}
