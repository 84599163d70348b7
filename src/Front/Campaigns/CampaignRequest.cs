using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bulk.Front.Campaigns;

/// <summary>The body of <c>POST /campaigns</c>, as the client sent it (nothing checked yet).</summary>
public sealed class CampaignRequest
{
    public string? From { get; set; }
    public string? Subject { get; set; }
    public string? Text { get; set; }
    public string? Html { get; set; }
    public List<RecipientInput?>? Recipients { get; set; }
    public Dictionary<string, string?>? Headers { get; set; }

    /// <summary>The envelope sender bounces go to; the From address when absent.</summary>
    public string? Bounce { get; set; }

    /// <summary>Give each recipient its own bounce address (<c>local+{campaign}-{recipient}@domain</c>).</summary>
    public bool? Verp { get; set; }
}

/// <summary>A recipient as posted: either a bare address or <c>{ "email": ..., "data": { ... } }</c>.</summary>
[JsonConverter(typeof(RecipientInputConverter))]
public sealed record RecipientInput(string? Email, Dictionary<string, JsonElement>? Data);

/// <summary>The answer to an accepted campaign.</summary>
public sealed record CampaignAccepted(string Id, string Status, int Total, int DuplicatesDropped);

/// <summary>The answer to <c>GET /campaigns</c>: the most recent first.</summary>
public sealed record CampaignList(IReadOnlyList<Bulk.Contracts.Outcomes.CampaignStatus> Campaigns);

/// <summary>A page of a campaign's failed recipients.</summary>
public sealed record FailurePage(string Id, int Count, int Offset, int Limit, IReadOnlyList<Bulk.Contracts.Outcomes.FailedRecipient> Failures);

internal sealed class RecipientInputConverter : JsonConverter<RecipientInput>
{
    public override RecipientInput Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new RecipientInput(reader.GetString(), null);
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A recipient is an email address string or an object { \"email\": ..., \"data\": { ... } }.");
        }

        string? email = null;
        Dictionary<string, JsonElement>? data = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString();
            reader.Read();
            if (string.Equals(name, "email", StringComparison.OrdinalIgnoreCase))
            {
                email = reader.TokenType == JsonTokenType.String
                    ? reader.GetString()
                    : throw new JsonException("A recipient's email must be a string.");
            }
            else if (string.Equals(name, "data", StringComparison.OrdinalIgnoreCase))
            {
                data = ReadData(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }

        return new RecipientInput(email, data);
    }

    private static Dictionary<string, JsonElement>? ReadData(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A recipient's data must be an object of placeholder values.");
        }

        // One document for the whole object, its values pointing into it: a document per value cost ~350 bytes each.
        var whole = JsonElement.ParseValue(ref reader);
        var data = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in whole.EnumerateObject())
        {
            EnsureReadable(property.Value);
            data[NameOf(property)] = property.Value;
        }

        return data;
    }

    private static string NameOf(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"A recipient's data holds a name that is not text: {e.Message}");
        }
    }

    // JSON may escape half a UTF-16 pair ("\ud800"): it parses, but it is no text and could never be rendered or
    // re-serialized. Refuse it here, where the path to it is known, rather than fail later.
    private static void EnsureReadable(JsonElement value)
    {
        try
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.String:
                    _ = value.GetString();
                    break;
                case JsonValueKind.Array:
                    foreach (var item in value.EnumerateArray())
                    {
                        EnsureReadable(item);
                    }

                    break;
                case JsonValueKind.Object:
                    foreach (var property in value.EnumerateObject())
                    {
                        _ = property.Name;
                        EnsureReadable(property.Value);
                    }

                    break;
            }
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"A recipient's data holds a string that is not text: {e.Message}");
        }
    }

    public override void Write(Utf8JsonWriter writer, RecipientInput value, JsonSerializerOptions options) =>
        throw new NotSupportedException("Recipients are only read.");
}
