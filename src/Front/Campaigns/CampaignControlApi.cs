using System.Security.Claims;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Access;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Campaigns;

/// <summary><c>POST /campaigns/{id}/pause|resume|cancel</c>: recorded on the outcomes stream, so every Front and Worker agrees.</summary>
/// <remarks>Resume also releases a campaign the relay's refusal put on hold: once the relay is fixed, it goes on where it stopped.</remarks>
public static partial class CampaignControlApi
{
    public static RouteGroupBuilder MapCampaignControl(this RouteGroupBuilder group)
    {
        var control = group.MapGroup("")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        control.MapPost("/{id}/pause", (string id, ClaimsPrincipal user, OutcomeLog outcomes, TimeProvider clock, ILoggerFactory logs, CancellationToken ct) => ControlAsync(id, Tenants.ViewOf(user), OutcomeType.Paused, outcomes, clock, logs, ct))
            .WithSummary("Pause a campaign")
            .WithDescription("Workers send nothing more of it until it is resumed; pausing a paused campaign is no change. 409 once it is finished.");
        control.MapPost("/{id}/resume", (string id, ClaimsPrincipal user, OutcomeLog outcomes, TimeProvider clock, ILoggerFactory logs, CancellationToken ct) => ControlAsync(id, Tenants.ViewOf(user), OutcomeType.Resumed, outcomes, clock, logs, ct))
            .WithSummary("Resume a paused or held campaign")
            .WithDescription("It goes on where it stopped; a campaign the relay's refusal held goes on once the relay is fixed. 409 when it is neither paused nor held.");
        control.MapPost("/{id}/cancel", (string id, ClaimsPrincipal user, OutcomeLog outcomes, TimeProvider clock, ILoggerFactory logs, CancellationToken ct) => ControlAsync(id, Tenants.ViewOf(user), OutcomeType.Cancelled, outcomes, clock, logs, ct))
            .WithSummary("Cancel a campaign")
            .WithDescription("Recipients not yet sent are not sent. 409 once it is finished.");
        return group;
    }

    private static async Task<Results<Ok<CampaignStatus>, ProblemHttpResult>> ControlAsync(
        string id, TenantView view, OutcomeType action, OutcomeLog outcomes, TimeProvider clock, ILoggerFactory logs, CancellationToken cancellationToken)
    {
        // Another API key's campaign is answered as one that does not exist.
        if (outcomes.Ledger.Find(id, view) is not { } status)
        {
            return Problems.UnknownCampaign(id);
        }

        if (status.IsFinished)
        {
            return Conflict($"Campaign {id} is {status.Status}; it can no longer be paused, resumed or cancelled.");
        }

        switch (action)
        {
            case OutcomeType.Paused when status.Status == CampaignLedger.Statuses.Paused:
                return TypedResults.Ok(status); // pausing twice is still paused
            case OutcomeType.Resumed when status.Status is not (CampaignLedger.Statuses.Paused or CampaignLedger.Statuses.Held):
                return Conflict($"Campaign {id} is {status.Status}, not paused or held.");
        }

        var control = new OutcomeEvent(action, id, clock.GetUtcNow(), status.Total);
        try
        {
            await outcomes.RecordAsync([control], cancellationToken);
        }
        catch (IOException)
        {
            // The stream's writer logged the reason, which names the broker's host and port; the client is told no more.
            return Broker.BrokerProblem.ServiceUnavailable("Not recorded", $"The {action.ToString().ToLowerInvariant()} request was not confirmed; retry later.");
        }

        // Who stopped or restarted a campaign, and when, is an operator's first question: one line each, at Information.
        var logger = logs.CreateLogger(typeof(CampaignControlApi).FullName!);
        using (logger.BeginScope("Campaign {CampaignId}", id))
        {
            LogControlled(logger, id, action.ToString().ToLowerInvariant(), System.Diagnostics.Activity.Current?.TraceId.ToString());
        }

        return TypedResults.Ok(outcomes.Ledger.Find(id)!);
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} {Action} on request, trace {TraceId}")]
    private static partial void LogControlled(ILogger logger, string campaignId, string action, string? traceId);

    private static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible now", detail: detail);
}
