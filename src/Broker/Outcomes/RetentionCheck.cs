using System.Globalization;

namespace Bulk.Broker.Outcomes;

/// <summary>Whether the outcomes stream's size cap cuts its age setting short, at the rate the stream has grown.</summary>
/// <remarks>
/// RabbitMQ drops a stream's oldest segments at whichever limit comes first, silently: at 10 M mails a day the 2 GB
/// default keeps less than a day of "7D". The rate is what this process read at start (bytes of entries, from the
/// oldest entry's time to now); a history shorter than <see cref="ShortestHistory"/> says too little to project.
/// </remarks>
public static class RetentionCheck
{
    public static readonly TimeSpan ShortestHistory = TimeSpan.FromHours(1);

    /// <summary>The warning to log at start, or null when the size cap keeps at least the age asked for.</summary>
    /// <param name="oldest">When the oldest entry still in the stream was written.</param>
    /// <param name="bytes">The bytes of every entry read, from the oldest to now.</param>
    public static string? Warning(DateTimeOffset oldest, DateTimeOffset now, long bytes, long maxBytes, string maxAge)
    {
        var history = now - oldest;
        if (history < ShortestHistory || bytes <= 0 || ParseAge(maxAge) is not { } age)
        {
            return null;
        }

        var bytesPerDay = bytes / history.TotalDays;
        // In days as a double: a quiet stream projects to more days than a TimeSpan holds.
        var keptDays = maxBytes / bytesPerDay;
        if (keptDays >= age.TotalDays)
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"at the rate the outcomes stream grew ({bytesPerDay / 1e6:F0} MB a day over the last {history.TotalDays:F1} days), " +
            $"RabbitMq__OutcomesMaxBytes ({maxBytes / 1e9:F1} GB) keeps about {keptDays:F1} days of it, less than RabbitMq__OutcomesMaxAge " +
            $"({maxAge}): older campaigns' history is cut by size. Raise RabbitMq__OutcomesMaxBytes (with a policy on an existing stream) or shorten the age");
    }

    /// <summary>RabbitMQ's x-max-age: a number and a unit (Y, M, D, h, m, s); null when unreadable.</summary>
    public static TimeSpan? ParseAge(string maxAge)
    {
        if (maxAge.Length < 2 || !long.TryParse(maxAge.AsSpan(0, maxAge.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return null;
        }

        return maxAge[^1] switch
        {
            'Y' => TimeSpan.FromDays(365 * n),
            'M' => TimeSpan.FromDays(30 * n),
            'D' => TimeSpan.FromDays(n),
            'h' => TimeSpan.FromHours(n),
            'm' => TimeSpan.FromMinutes(n),
            's' => TimeSpan.FromSeconds(n),
            _ => null,
        };
    }
}
