using System.Net;
using Bulk.Broker.Suppressions;
using Bulk.Contracts.Suppressions;
using Bulk.Front.Access;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Suppressions;

/// <summary>Recipients' unsubscribe links: <c>GET /unsubscribe/{token}</c> asks, <c>POST</c> unsubscribes (RFC 8058 one-click).</summary>
/// <remarks>
/// A GET never unsubscribes: mail scanners and link previews follow links. Mail clients' one-click button POSTs
/// <c>List-Unsubscribe=One-Click</c> to the same address; the page's button does the same. Both need no API key:
/// the signed token is the proof.
/// </remarks>
public static class UnsubscribeApi
{
    public static RouteGroupBuilder MapUnsubscribe(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/unsubscribe").AllowAnonymous().WithTags("Unsubscribe");
        group.MapGet("/{token}", Ask)
            .Produces<string>(StatusCodes.Status200OK, "text/html")
            .Produces<string>(StatusCodes.Status400BadRequest, "text/html")
            .WithSummary("The page a recipient's unsubscribe link opens")
            .WithDescription("Asks before it unsubscribes: mail scanners and link previews follow links. 400 for a token this sender did not sign.");
        group.MapPost("/{token}", UnsubscribeAsync).DisableAntiforgery()
            // A mailbox provider's one-click POST comes from its own servers or pages: the signed token is the proof.
            .AllowCrossSite()
            .Produces<string>(StatusCodes.Status200OK, "text/html")
            .Produces<string>(StatusCodes.Status400BadRequest, "text/html")
            .Produces<string>(StatusCodes.Status503ServiceUnavailable, "text/html")
            .WithSummary("Unsubscribe (RFC 8058 one-click)")
            .WithDescription("What mail clients' one-click button and the page's button post (`List-Unsubscribe=One-Click`, the body is not read). " +
                "The signed token is the proof: no API key.");
        return group;
    }

    internal static IResult Ask(string token, IOptions<UnsubscribeOptions> options)
    {
        if (!UnsubscribeToken.TryRead(options.Value.Secret!, token, out _, out var email))
        {
            return Page(StatusCodes.Status400BadRequest, "This unsubscribe link is not valid.", null);
        }

        return Page(StatusCodes.Status200OK, $"Stop all mail to {email}?",
            $"<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>");
    }

    internal static async Task<IResult> UnsubscribeAsync(string token, IOptions<UnsubscribeOptions> options, SuppressionLog log, CancellationToken cancellationToken)
    {
        if (!UnsubscribeToken.TryRead(options.Value.Secret!, token, out var campaignId, out var email))
        {
            return Page(StatusCodes.Status400BadRequest, "This unsubscribe link is not valid.", null);
        }

        if (log.List.Find(email) is null)
        {
            var unsubscribed = new SuppressionEvent(SuppressionType.Suppressed, email, DateTimeOffset.UtcNow, SuppressionReasons.Unsubscribed, campaignId);
            if (await SuppressionsApi.RecordAsync(log, unsubscribed, cancellationToken) is not null)
            {
                return Page(StatusCodes.Status503ServiceUnavailable, "We could not record your request just now. Please try again in a minute.", null);
            }
        }

        return Page(StatusCodes.Status200OK, $"{email} is unsubscribed and will get no more mail from this sender.", null);
    }

    private static IResult Page(int status, string message, string? form) => Results.Content(
        $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head>" +
        $"<body><main><p>{WebUtility.HtmlEncode(message)}</p>{form}</main></body></html>",
        "text/html; charset=utf-8", statusCode: status);
}
