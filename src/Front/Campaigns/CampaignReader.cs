using System.Text.Json;
using Bulk.Contracts;
using Bulk.Front.Access;
using Bulk.Templates;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Campaigns;

/// <summary>What a <c>POST /campaigns</c> request holds: a campaign to submit, or the answer that refuses it.</summary>
public abstract record PostedCampaign
{
    private PostedCampaign()
    {
    }

    /// <summary>A valid campaign from an allowed sender, ready for <see cref="CampaignIntake.SubmitAsync"/>.</summary>
    /// <param name="IdempotencyKey">The request's <c>Idempotency-Key</c>, when it gave one.</param>
    /// <param name="Hash">Recognises the same body posted again with the same key.</param>
    /// <param name="KeyScope">Whose key it is (<see cref="Access.IdempotencyScope"/>): empty without API keys.</param>
    public sealed record Valid(DeliveryJob Job, int DuplicatesDropped, string? IdempotencyKey, string Hash, string KeyScope = "") : PostedCampaign;

    /// <summary>A 400 naming the fields at fault.</summary>
    public sealed record Invalid(ValidationProblem Problem) : PostedCampaign;

    /// <summary>Any other refusal: a body that is not JSON, too large or unreadable, a sender not allowed.</summary>
    public sealed record Refused(ProblemHttpResult Problem) : PostedCampaign;
}

/// <summary>Reads and checks a posted campaign: its media type, its <c>Idempotency-Key</c>, its body, its fields, its sender.</summary>
public sealed class CampaignReader(CampaignValidator validator, AllowedSenders senders, RenderTurns turns, IOptions<FrontOptions> options)
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public async Task<PostedCampaign> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
        {
            return Refused(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                $"Send the campaign as application/json (got '{request.ContentType ?? "none"}').");
        }

        var key = request.Headers[IdempotencyKeyHeader].ToString();
        if (key.Length > 0 && (key.Length > 200 || key.Any(c => c is < ' ' or > '~')))
        {
            return Invalid(Problems.Invalid(IdempotencyKeyHeader, "An idempotency key is 1 to 200 printable ASCII characters."));
        }

        CampaignBody body;
        // Kestrel's minimum data rate lets a large body take days; what a POST holds while it reads must be given back.
        // The deadline cancels the pending read rather than the read's token: a read cancelled by its token leaves
        // Kestrel's body reader "in progress", and Kestrel then logs an error for every slow client it closes
        // (CampaignBodyStream ends a cancelled read properly).
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.BodyDeadlineSeconds));
        var onDeadline = deadline.Token.Register(static reader => ((System.IO.Pipelines.PipeReader)reader!).CancelPendingRead(), request.BodyReader);
        try
        {
            // Read as it streams in, with no copy kept: Kestrel enforces Front__MaxBodyBytes while this reads, the
            // body's guard refuses what can be told before the end (too many recipients, a value too large), and the
            // POST's share of the intake memory grows with what arrives.
            body = await CampaignBody.ReadAsync(request, options.Value, request.HttpContext.Features.Get<IntakeReservation>(), cancellationToken);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new PostedCampaign.Refused(TypedResults.Problem(
                statusCode: StatusCodes.Status408RequestTimeout,
                title: "The body came too slowly",
                detail: $"The campaign body did not arrive whole within {options.Value.BodyDeadlineSeconds} s (Front__BodyDeadlineSeconds). " +
                    "Nothing was enqueued; send it again faster, or smaller.",
                extensions: new Dictionary<string, object?> { ["setting"] = "Front__BodyDeadlineSeconds", ["limit"] = options.Value.BodyDeadlineSeconds }));
        }
        catch (IntakeBusyException)
        {
            return new PostedCampaign.Refused(IntakeMemoryFilter.Busy(request.HttpContext.Response, read: true));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Refused(StatusCodes.Status413PayloadTooLarge, "Body too large", "The campaign body is larger than Front__MaxBodyBytes allows.");
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel could not read the body: broken chunked framing, fewer bytes than the Content-Length said…
            return Refused(e.StatusCode, "The body could not be read", e.Message);
        }
        catch (CampaignBodyRefusedException e)
        {
            return Invalid(Problems.Invalid(e.Field, e.Message, "The campaign has invalid fields"));
        }
        catch (JsonException e)
        {
            return Invalid(Problems.InvalidJson(e, "The body is not a valid campaign"));
        }
        finally
        {
            // Once read, the body is past its deadline's reach.
            await onDeadline.DisposeAsync();
        }

        if (body.Request is not { } campaign)
        {
            return Invalid(Problems.Invalid("body", "A campaign object is required.", "The body is not a valid campaign"));
        }

        var scope = IdempotencyScope.Of(request.HttpContext.User);
        CampaignValidator.Result result;
        // Validation renders the templates once: CPU work whose time budget is wall-clock time, taken in turns by caller.
        using (await turns.TakeAsync(scope, cancellationToken))
        {
            result = validator.Validate(campaign, key.Length > 0 ? KeyedCampaignId(scope, key) : Guid.CreateVersion7().ToString("N"));
        }

        if (!result.IsValid)
        {
            return Invalid(TypedResults.ValidationProblem(result.Errors, title: "The campaign has invalid fields"));
        }

        if (senders.Refusals(result.Sender!, result.Job!.Template!.Bounce) is { Count: > 0 } refused)
        {
            return new PostedCampaign.Refused(TypedResults.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Sender not allowed",
                detail: AllowedSenders.RefusalDetail(result.Sender!, result.Job.Template.Bounce, refused),
                extensions: new Dictionary<string, object?> { ["errors"] = refused }));
        }

        return new PostedCampaign.Valid(result.Job, result.DuplicatesDropped, key.Length > 0 ? key : null, body.Hash, scope);
    }

    /// <summary>The campaign id of a caller's <c>Idempotency-Key</c>: the same on every Front and for every retry, so a
    /// retry finds the campaign its first try made whatever became of that try; as long as a generated id (32 hex digits).</summary>
    public static string KeyedCampaignId(string scope, string key) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"bulk campaign\n{scope}\n{key}")))[..32];

    private static PostedCampaign.Invalid Invalid(ValidationProblem problem) => new(problem);

    private static PostedCampaign.Refused Refused(int status, string title, string detail) =>
        new(TypedResults.Problem(statusCode: status, title: title, detail: detail));
}
