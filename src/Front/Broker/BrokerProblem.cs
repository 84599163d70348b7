using Bulk.Broker;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Broker;

/// <summary>What a client is told when the broker is away or did not confirm: that much, and never where the broker runs.</summary>
/// <remarks>
/// The reason (host, port, the broker's or the client library's own words) goes to the log where it arises:
/// <see cref="BrokerConnection"/>, the campaign publisher and the streams' writer.
/// </remarks>
public static class BrokerProblem
{
    public const string Unavailable = BrokerUnavailableException.Unavailable;

    /// <summary>A 503 whose detail is <see cref="Unavailable"/>, then what it means for the request.</summary>
    public static ProblemHttpResult ServiceUnavailable(string title, string consequence) => TypedResults.Problem(
        statusCode: StatusCodes.Status503ServiceUnavailable, title: title, detail: $"{Unavailable} {consequence}");
}
