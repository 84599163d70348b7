using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bulk.Front.Campaigns;

/// <summary><c>POST /campaigns/{id}/pause|resume|cancel</c>: recorded on the outcomes stream, so every Front and Worker agrees.</summary>
/// <remarks>Resume also releases a campaign the relay's refusal put on hold: once the relay is fixed, it goes on where it stopped.</remarks>
public static class CampaignControlApi
{
    public static RouteGroupBuilder MapCampaignControl(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/pause", (string id, OutcomeLog outcomes, CancellationToken ct) => ControlAsync(id, OutcomeType.Paused, outcomes, ct));
        group.MapPost("/{id}/resume", (string id, OutcomeLog outcomes, CancellationToken ct) => ControlAsync(id, OutcomeType.Resumed, outcomes, ct));
        group.MapPost("/{id}/cancel", (string id, OutcomeLog outcomes, CancellationToken ct) => ControlAsync(id, OutcomeType.Cancelled, outcomes, ct));
        return group;
    }

    private static async Task<Results<Ok<CampaignStatus>, ProblemHttpResult>> ControlAsync(
        string id, OutcomeType action, OutcomeLog outcomes, CancellationToken cancellationToken)
    {
        if (outcomes.Ledger.Find(id) is not { } status)
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

        var control = new OutcomeEvent(action, id, DateTimeOffset.UtcNow, status.Total);
        try
        {
            await outcomes.RecordAsync([control], cancellationToken);
        }
        catch (IOException)
        {
            // The stream's writer logged the reason, which names the broker's host and port; the client is told no more.
            return Broker.BrokerProblem.ServiceUnavailable("Not recorded", $"The {action.ToString().ToLowerInvariant()} request was not confirmed; retry later.");
        }

        return TypedResults.Ok(outcomes.Ledger.Find(id)!);
    }

    private static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible now", detail: detail);
}
