using System.Text.Json;

namespace Bulk.Front.Campaigns;

/// <summary>A posted campaign as read from the request body, with the hash that recognises the same body posted again.</summary>
internal sealed record CampaignBody(CampaignRequest? Request, string Hash)
{
    /// <summary>
    /// Deserializes the body as it streams in, never holding a copy of it, and hashes every byte for the idempotency check.
    /// </summary>
    /// <exception cref="JsonException">The body is not JSON, or not a campaign's.</exception>
    /// <exception cref="CampaignBodyRefusedException">The body broke a limit while it streamed in (recipients, subject, a value's size).</exception>
    /// <exception cref="BadHttpRequestException">Kestrel refused the body: over Front__MaxBodyBytes (413) or badly framed.</exception>
    /// <exception cref="IntakeBusyException">The body grew past what <paramref name="reservation"/> could get of the intake memory.</exception>
    public static async Task<CampaignBody> ReadAsync(HttpRequest http, FrontOptions options, IntakeReservation? reservation, CancellationToken cancellationToken)
    {
        await using var body = new CampaignBodyStream(http.BodyReader, new CampaignBodyGuard(
            options.MaxRecipients, options.MaxTemplateBytes, options.MaxDataValuesPerRecipient, options.MaxDataValues), reservation);
        var request = await JsonSerializer.DeserializeAsync(body, FrontJson.Default.CampaignRequest, cancellationToken);

        // The serializer reads on to make sure nothing but whitespace follows the JSON; whatever it left unread, the
        // hash must cover the whole body, as it did when the body was hashed in one piece.
        await body.CopyToAsync(Stream.Null, cancellationToken);
        return new CampaignBody(request, body.Hash());
    }
}
