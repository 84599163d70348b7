using System.Text;
using RabbitMQ.Client;

namespace Bulk.Front.DeadLetters;

/// <summary>What a parked message says of itself: when it was parked, and why.</summary>
internal static class ParkedMessages
{
    /// <summary>When the message reached the parking lot, or null when it does not say (parked by an earlier version).</summary>
    /// <remarks>
    /// The broker's own dead-lettering (the work queue's delivery limit) records the time in <c>x-death</c>; a Worker
    /// that parks a job stamps it (<see cref="Bulk.Broker.JobMessages.Properties"/>). The first is read first: a
    /// message the broker dead-lettered keeps whatever stamp it was published with.
    /// </remarks>
    public static DateTimeOffset? ParkedAt(IReadOnlyBasicProperties properties)
    {
        if (properties.Headers is { } headers && headers.TryGetValue("x-death", out var death)
            && death is IList<object> { Count: > 0 } deaths
            && deaths[0] is IDictionary<string, object?> latest
            && latest.TryGetValue("time", out var at) && at is AmqpTimestamp time)
        {
            return DateTimeOffset.FromUnixTimeSeconds(time.UnixTime);
        }

        return properties.IsTimestampPresent() ? DateTimeOffset.FromUnixTimeSeconds(properties.Timestamp.UnixTime) : null;
    }

    /// <summary>The reason the Worker gave when it parked the message, or null.</summary>
    public static string? Reason(IReadOnlyBasicProperties properties) =>
        properties.Headers is { } headers && headers.TryGetValue(Bulk.Contracts.AmqpHeaders.DeadReason, out var reason)
            ? reason switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                string text => text,
                _ => null,
            }
            : null;
}
