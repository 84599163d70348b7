using System.Text.Json;
using Bulk.Contracts;
using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>How a <see cref="DeliveryJob"/> travels: its body, its message properties, and what makes one readable.</summary>
public static class JobMessages
{
    public static byte[] Serialize(DeliveryJob job) => JsonSerializer.SerializeToUtf8Bytes(job, BulkJson.Default.DeliveryJob);

    /// <summary>A persistent JSON job; parked ones carry the reason they were parked, and when.</summary>
    public static BasicProperties Properties(string? deadReason = null, string? campaignId = null, string? messageId = null)
    {
        var properties = new BasicProperties { Persistent = true, ContentType = "application/json", Type = AmqpHeaders.JobType, MessageId = messageId };
        if (deadReason is not null || campaignId is not null)
        {
            properties.Headers = new Dictionary<string, object?>();
            if (deadReason is not null)
            {
                properties.Headers[AmqpHeaders.DeadReason] = deadReason;
                // When it was parked: how old it is when someone looks at the parking lot (GET /dead-letters).
                properties.Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            }

            if (campaignId is not null)
            {
                properties.Headers[AmqpHeaders.CampaignId] = campaignId;
            }
        }

        return properties;
    }

    /// <summary>How often the message was returned to its quorum queue unacknowledged before this delivery (RabbitMQ's
    /// <c>x-delivery-count</c>, absent on a first delivery).</summary>
    public static long DeliveryCount(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue("x-delivery-count", out var count) is true && count is not null
            ? Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture)
            : 0;

    /// <summary>The job in <paramref name="body"/>, or null with the reason it cannot be worked on.</summary>
    public static DeliveryJob? TryRead(ReadOnlySpan<byte> body, out string? reason)
    {
        try
        {
            var job = JsonSerializer.Deserialize(body, BulkJson.Default.DeliveryJob);
            reason = job switch
            {
                null => "empty job",
                { Version: not (DeliveryJob.CurrentVersion or DeliveryJob.ReferenceVersion) } => $"unknown job version {job.Version}",
                { CampaignId: null or "" } or { Recipients: null } => "incomplete job",
                // Exactly one of the two: the template itself, or where it is.
                { Template: null, TemplateAt: null } or { Template: not null, TemplateAt: not null } => "incomplete job",
                { TemplateAt: { Id: null or "" } or { Offset: < 0 } } => "incomplete job",
                _ when job.Recipients.Any(r => r is null) => "incomplete job",
                _ => null,
            };
            return reason is null ? job : null;
        }
        catch (JsonException e)
        {
            reason = $"unreadable job: {e.Message}";
            return null;
        }
    }
}
