using System.Globalization;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Access;

namespace Bulk.Front.Campaigns;

/// <summary><c>GET /campaigns/{id}/events</c>: the campaign's progress as Server-Sent Events, until it is finished.</summary>
/// <remarks>
/// Each event carries the whole status, its id the ledger's version of the campaign; a client that reconnects with
/// <c>Last-Event-ID</c> gets the next change (or the end) without missing anything, since a snapshot says it all.
/// </remarks>
public static class CampaignEventsApi
{
    /// <summary>At most this many updates a second.</summary>
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static RouteGroupBuilder MapCampaignEvents(this RouteGroupBuilder group)
    {
        group.MapGet("/{id}/events", StreamAsync)
            .Produces<string>(StatusCodes.Status200OK, "text/event-stream")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Follow a campaign as Server-Sent Events")
            .WithDescription("`progress` events, then one `end` event once it is finished, each carrying the whole status as JSON " +
                "(the schema of `GET /campaigns/{id}`) and the ledger's version of it as the event id. A client that reconnects with " +
                "`Last-Event-ID` gets the next change.");
        return group;
    }

    private static async Task<IResult> StreamAsync(string id, HttpContext http, OutcomeLog outcomes, IHostApplicationLifetime lifetime, CancellationToken aborted)
    {
        var view = Tenants.ViewOf(http.User);
        // A stream ends when the client goes away or this Front stops: shutdown must not wait for open streams
        // (the client reconnects, with Last-Event-ID, to whichever Front answers next).
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(aborted, lifetime.ApplicationStopping);
        var cancellationToken = ending.Token;
        if (outcomes.Ledger.Find(id, view) is null)
        {
            return Problems.UnknownCampaign(id);
        }

        var lastSeen = long.TryParse(http.Request.Headers["Last-Event-ID"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var last)
            ? last
            : -1;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        await http.Response.WriteAsync("retry: 2000\n\n", cancellationToken);

        var quietSince = DateTime.UtcNow;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // A campaign once seen stays seen (its tenant is never taken back), unless it is forgotten.
                if (outcomes.Ledger.Find(id, view) is not { } status)
                {
                    break;
                }

                if (status.Version != lastSeen)
                {
                    await WriteEventAsync(http, "progress", status, cancellationToken);
                    lastSeen = status.Version;
                    quietSince = DateTime.UtcNow;
                }

                if (status.IsFinished)
                {
                    await WriteEventAsync(http, "end", status, cancellationToken);
                    break;
                }

                if (DateTime.UtcNow - quietSince > KeepAlive)
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", cancellationToken);
                    await http.Response.Body.FlushAsync(cancellationToken);
                    quietSince = DateTime.UtcNow;
                }

                await Task.Delay(Interval, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away, or the Front is stopping.
        }

        return Results.Empty;
    }

    private static async Task WriteEventAsync(HttpContext http, string type, CampaignStatus status, CancellationToken cancellationToken)
    {
        var data = JsonSerializer.Serialize(status, FrontJson.Default.CampaignStatus);
        await http.Response.WriteAsync($"id: {status.Version}\nevent: {type}\ndata: {data}\n\n", cancellationToken);
        await http.Response.Body.FlushAsync(cancellationToken);
    }
}
