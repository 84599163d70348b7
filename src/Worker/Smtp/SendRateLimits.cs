using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Smtp;

/// <summary>Keeps a Worker under its relay's limits: a rate for all mail, rates per recipient domain, and a back-off
/// for a domain whose relay answers "too many".</summary>
/// <remarks>
/// Rates are token buckets refilled every tenth of a second (or per token, for slow rates), holding one refill's worth,
/// so bursts stay small and the rate over any few seconds is the configured one. These are per Worker: N Workers send
/// up to N times as much. <see cref="GlobalRateLimit"/> is the one rate for all of them.
/// </remarks>
public sealed partial class SendRateLimits : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    private readonly RateLimiter? overall;
    private readonly Dictionary<string, RateLimiter> domains;
    private readonly ConcurrentDictionary<string, Backoff> backoffs = new(StringComparer.OrdinalIgnoreCase);
    private readonly GlobalRateLimit global;
    private readonly ILogger<SendRateLimits> logger;
    // Back-offs are measured on its monotonic clock: the wall clock may be stepped (NTP, an operator), and a back-off
    // set by it lasted an hour more when it was set back an hour, or ended at once when it was set forward.
    private readonly TimeProvider clock;

    public SendRateLimits(IOptions<SmtpOptions> options, GlobalRateLimit global, ILogger<SendRateLimits> logger, TimeProvider clock)
    {
        this.global = global;
        this.logger = logger;
        this.clock = clock;
        overall = options.Value.MaxMessagesPerSecond > 0 ? Bucket(options.Value.MaxMessagesPerSecond) : null;
        domains = options.Value.DomainLimits.ToDictionary(d => d.Key, d => Bucket(d.Value), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Whether any domain may have to wait: one has a rate of its own, or the relay asked us to slow down for one.</summary>
    public bool LimitsAnyDomain => domains.Count > 0 || !backoffs.IsEmpty;

    /// <summary>Whether a message to <paramref name="domain"/> may have to wait for that domain: it has a rate of its
    /// own, or a back-off after the relay's "too many" is in force.</summary>
    public bool LimitsDomain(string domain) => domains.ContainsKey(domain)
        || (backoffs.TryGetValue(domain, out var backoff) && Remaining(backoff) > TimeSpan.Zero);

    /// <summary>Waits until a message to <paramref name="domain"/> may go.</summary>
    public async ValueTask WaitTurnAsync(string domain, CancellationToken cancellationToken)
    {
        await WaitForDomainAsync(domain, cancellationToken);
        await WaitSharedTurnAsync(cancellationToken);
    }

    /// <summary>Waits for <paramref name="domain"/>'s own turn (its back-off, then its rate), not for the rates all
    /// domains share: false, with nothing taken, when <paramref name="giveUp"/> came first.</summary>
    public async ValueTask<bool> WaitDomainTurnAsync(string domain, CancellationToken giveUp)
    {
        try
        {
            await WaitForDomainAsync(domain, giveUp);
            return true;
        }
        catch (OperationCanceledException) when (giveUp.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Waits for the rates all domains share: the Worker's own, then the global one.</summary>
    public async ValueTask WaitSharedTurnAsync(CancellationToken cancellationToken)
    {
        if (overall is not null)
        {
            await AcquireAsync(overall, SmtpMetrics.OverallLimit, cancellationToken);
        }

        if (global.Enabled)
        {
            await global.AcquireAsync(cancellationToken);
        }
    }

    private async ValueTask WaitForDomainAsync(string domain, CancellationToken cancellationToken)
    {
        if (backoffs.TryGetValue(domain, out var backoff) && Remaining(backoff) is { Ticks: > 0 } wait)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await Task.Delay(wait, clock, cancellationToken);
            SmtpMetrics.Waited(SmtpMetrics.BackoffLimit, started);
        }

        if (domains.TryGetValue(domain, out var limiter))
        {
            await AcquireAsync(limiter, SmtpMetrics.DomainLimit, cancellationToken);
        }
    }

    /// <summary>The relay said "too many": that domain waits, twice as long as last time (up to a minute).</summary>
    public void Throttled(string domain, string? reply)
    {
        var backoff = backoffs.AddOrUpdate(domain,
            _ => new Backoff(FirstBackoff, ResumeAt(FirstBackoff)),
            (_, b) =>
            {
                var delay = TimeSpan.FromTicks(Math.Min(b.Delay.Ticks * 2, MaxBackoff.Ticks));
                return new Backoff(delay, ResumeAt(delay));
            });
        LogThrottled(domain, backoff.Delay.TotalSeconds, reply);
    }

    /// <summary>A message went through: the domain's back-off shrinks, and goes once it is short.</summary>
    public void Succeeded(string domain)
    {
        if (backoffs.TryGetValue(domain, out var backoff))
        {
            var delay = backoff.Delay / 2;
            if (delay < FirstBackoff)
            {
                backoffs.TryRemove(domain, out _);
            }
            else
            {
                backoffs[domain] = backoff with { Delay = delay };
            }
        }
    }

    /// <summary>421, or a 4xx whose enhanced code is 4.7.x or whose text says the sender is going too fast.</summary>
    public static bool IsThrottling(int code, string reply) =>
        code == 421 || (code is >= 400 and < 500 && ThrottleText().IsMatch(reply));

    private static RateLimiter Bucket(double perSecond)
    {
        var tokens = Math.Max(1, (int)Math.Ceiling(perSecond / 10));
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            // Room for half a second of tokens: a replenishment timer that runs late on a busy machine must not cap
            // away the tokens it owes (with room for one period only, the rate came out ~5 % low under load).
            TokenLimit = Math.Max(tokens, (int)Math.Ceiling(perSecond / 2)),
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = TimeSpan.FromSeconds(tokens / perSecond),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    private static async ValueTask AcquireAsync(RateLimiter limiter, KeyValuePair<string, object?> kind, CancellationToken cancellationToken)
    {
        // A permit at hand completes at once and is no wait: only a send that really waited is timed.
        var acquiring = limiter.AcquireAsync(1, cancellationToken);
        var started = acquiring.IsCompleted ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        using var lease = await acquiring;
        if (started != 0)
        {
            SmtpMetrics.Waited(kind, started);
        }

        if (!lease.IsAcquired)
        {
            throw new InvalidOperationException("the rate limiter refused a permit it should have queued");
        }
    }

    public void Dispose()
    {
        overall?.Dispose();
        foreach (var limiter in domains.Values)
        {
            limiter.Dispose();
        }
    }

    /// <summary>A domain's back-off: how long, and until when on <see cref="TimeProvider.GetTimestamp"/>.</summary>
    private sealed record Backoff(TimeSpan Delay, long ResumeAt);

    private long ResumeAt(TimeSpan delay) => clock.GetTimestamp() + (long)(delay.TotalSeconds * clock.TimestampFrequency);

    private TimeSpan Remaining(Backoff backoff) => clock.GetElapsedTime(clock.GetTimestamp(), backoff.ResumeAt);

    [GeneratedRegex(@"\b4\.7\.\d+\b|too many|rate limit|throttl|slow down", RegexOptions.IgnoreCase)]
    private static partial Regex ThrottleText();

    [LoggerMessage(LogLevel.Information, "The relay throttles {Domain}: waiting {Seconds} s before its next message ({Reply})")]
    private partial void LogThrottled(string domain, double seconds, string? reply);
}
