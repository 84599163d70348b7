using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Bulk.Worker.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Bulk.Worker.Smtp;

public enum SendStatus
{
    /// <summary>The relay accepted the message (250 after DATA).</summary>
    Delivered,

    /// <summary>The relay refused the recipient (a 5xx to RCPT TO): retrying cannot help, that recipient has failed.</summary>
    Rejected,

    /// <summary>A 4xx, a timeout or a dropped connection, still failing after the immediate retries.</summary>
    Deferred,

    /// <summary>A 5xx to DATA (or to anything but RCPT TO and MAIL FROM): not the recipient's fault; deferred, and counted against the sender.</summary>
    Refused,

    /// <summary>The relay refuses <em>us</em>: MAIL FROM or AUTH refused, or the sender's circuit is open. The campaign is held.</summary>
    SenderRefused,
}

/// <summary>What happened to one message, with the relay's reply when there was one.</summary>
/// <param name="Throttled">The relay refused because we send too fast: slow down, do not spend a retry.</param>
public readonly record struct SendResult(SendStatus Status, string? Reply = null, bool Throttled = false)
{
    public static readonly SendResult Delivered = new(SendStatus.Delivered);
}

/// <summary>Sends one message through the pool, retrying transient failures with exponential backoff and jitter.</summary>
/// <remarks>
/// SMTP semantics decide: a 5xx to RCPT TO fails that recipient, 4xx and broken connections are transient, and a refusal
/// of the sender (MAIL FROM, AUTH, DATA again and again) is nobody's failure: it opens a circuit breaker per relay and
/// sender, and whoever meets an open circuit holds their campaign instead of trying the relay.
/// </remarks>
public sealed partial class SmtpSender
{
    /// <summary>A relay that keeps saying "too many" is waited out this many times before the attempt counts as failed.</summary>
    private const int MaxThrottleWaits = 8;

    private readonly SmtpConnectionPool pool;
    private readonly SendRateLimits limits;
    private readonly DeliveryObserver observer;
    private readonly SmtpMetrics metrics;
    private readonly ILogger<SmtpSender> logger;
    private readonly ResiliencePipeline<SendResult> retry;
    private readonly DeliveryOptions options;
    private readonly string relay;
    private readonly ConcurrentDictionary<string, SenderCircuit> circuits = new(StringComparer.OrdinalIgnoreCase);

    // When this Worker first met each resume, in its own monotonic time, by the time the Front wrote on it. The Front's
    // clock is not this Worker's: compared with the circuit's opening as they were, a resume from a Front whose clock
    // is behind looked older than the opening, and the campaign was held again at once.
    private readonly ConcurrentDictionary<DateTimeOffset, long> resumesMet = new();

    public SmtpSender(SmtpConnectionPool pool, SendRateLimits limits, DeliveryObserver observer, IOptions<DeliveryOptions> options,
        IOptions<SmtpOptions> smtp, SmtpMetrics metrics, ILogger<SmtpSender> logger)
    {
        this.metrics = metrics;
        this.pool = pool;
        this.limits = limits;
        this.observer = observer;
        this.logger = logger;
        this.options = options.Value;
        relay = $"{smtp.Value.Host}:{smtp.Value.Port}";
        var builder = new ResiliencePipelineBuilder<SendResult>();
        if (options.Value.ImmediateRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<SendResult>
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result.Status == SendStatus.Deferred),
                MaxRetryAttempts = options.Value.ImmediateRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(options.Value.RetryBaseDelayMilliseconds),
                OnRetry = args =>
                {
                    LogRetry(args.AttemptNumber + 1, args.Outcome.Result.Reply, args.RetryDelay.TotalMilliseconds);
                    return ValueTask.CompletedTask;
                },
            });
        }

        retry = builder.Build();
    }

    /// <summary>Sends <paramref name="message"/> to its To addresses with <paramref name="envelopeFrom"/> as MAIL FROM.</summary>
    /// <param name="sender">Whose circuit the attempt goes through: the campaign's envelope sender, the same for every recipient.</param>
    /// <param name="resumedAt">When the campaign was last resumed: someone says the relay is fixed, so an open circuit gets a fresh try.</param>
    /// <param name="domainTurnTaken">The caller already waited for the recipient domain's turn (<see cref="SendRateLimits.WaitDomainTurnAsync"/>)
    /// for the first attempt; the rates all domains share, and every later attempt, are still waited for here.</param>
    /// <remarks><paramref name="stopping"/> cancels waiting, never a send under way.</remarks>
    /// <exception cref="OperationCanceledException">Stopped before the message was handed to the relay.</exception>
    public async Task<SendResult> SendAsync(MimeMessage message, MailboxAddress envelopeFrom, string sender, DateTimeOffset? resumedAt,
        bool domainTurnTaken, CancellationToken stopping)
    {
        var circuit = circuits.GetOrAdd(sender, NewCircuit);
        var domainTurn = domainTurnTaken ? new StrongBox<bool>(true) : null;
        await circuit.CloseIfResumedSinceAsync(resumedAt is { } resumed ? MetAt(resumed) : null);

        try
        {
            var result = await circuit.Pipeline.ExecuteAsync(
                static (state, token) => state.self.retry.ExecuteAsync(
                    static (s, t) => s.self.AttemptAsync(s.message, s.envelopeFrom, s.domainTurn, t), state, token),
                (self: this, message, envelopeFrom, domainTurn), stopping);
            // The refusal that opened the circuit holds its campaign at once, like every attempt after it.
            return result.Status == SendStatus.Refused && circuit.State.CircuitState is CircuitState.Open or CircuitState.Isolated
                ? result with { Status = SendStatus.SenderRefused }
                : result;
        }
        catch (BrokenCircuitException)
        {
            return new SendResult(SendStatus.SenderRefused, circuit.LastRefusal ?? "the relay keeps refusing this sender");
        }
    }

    private SenderCircuit NewCircuit(string sender)
    {
        var circuit = new SenderCircuit();
        circuit.Pipeline = new ResiliencePipelineBuilder<SendResult>()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<SendResult>
            {
                // Every attempt in the window refused: "again and again", not one bad message among good ones.
                FailureRatio = 1.0,
                MinimumThroughput = options.HoldAfterRefusals,
                SamplingDuration = TimeSpan.FromSeconds(Math.Max(30, options.HoldBreakSeconds)),
                BreakDuration = TimeSpan.FromSeconds(options.HoldBreakSeconds),
                StateProvider = circuit.State,
                ManualControl = circuit.Control,
                ShouldHandle = args =>
                {
                    var refused = args.Outcome.Result.Status is SendStatus.Refused or SendStatus.SenderRefused;
                    if (refused)
                    {
                        circuit.LastRefusal = args.Outcome.Result.Reply;
                    }

                    return ValueTask.FromResult(refused);
                },
                OnOpened = args =>
                {
                    circuit.OpenedAt = Stopwatch.GetTimestamp();
                    LogCircuitOpened(relay, sender, args.BreakDuration.TotalSeconds, circuit.LastRefusal);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
        return circuit;
    }

    /// <summary>When this Worker first met the resume written at <paramref name="resumedAt"/>: now, if this is the first time.</summary>
    /// <remarks>A resume met for the first time after the opening, though written before it (a campaign resumed long
    /// ago, whose first job here comes after the opening), also closes the circuit: one more try at the relay, which
    /// opens it again if the relay still refuses. Resumes are an operator's doing, so few; an hour's are kept past 10,000.</remarks>
    private long MetAt(DateTimeOffset resumedAt)
    {
        if (resumesMet.Count > 10_000)
        {
            var anHourAgo = Stopwatch.GetTimestamp() - Stopwatch.Frequency * 3600;
            foreach (var (resume, met) in resumesMet)
            {
                if (met < anHourAgo)
                {
                    resumesMet.TryRemove(resume, out _);
                }
            }
        }

        return resumesMet.GetOrAdd(resumedAt, _ => Stopwatch.GetTimestamp());
    }

    /// <summary>One attempt, in the relay's time: within the rate limits, and waiting out "too many" answers.</summary>
    private async ValueTask<SendResult> AttemptAsync(MimeMessage message, MailboxAddress envelopeFrom,
        StrongBox<bool>? domainTurn, CancellationToken stopping)
    {
        var domain = message.To.Mailboxes.First().Domain;
        for (var waits = 0; ; waits++)
        {
            if (domainTurn is { Value: true })
            {
                // Taken by the job (which told the observer), for this first attempt only: a retry is one more message to the domain.
                domainTurn.Value = false;
                await limits.WaitSharedTurnAsync(stopping);
            }
            else
            {
                observer.Step(DeliveryStep.RateLimit);
                await limits.WaitTurnAsync(domain, stopping);
            }

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var result = await SendOnceAsync(message, envelopeFrom, stopping);
            metrics.Attempted(started, result.Status);
            if (result.Throttled && waits < MaxThrottleWaits)
            {
                limits.Throttled(domain, result.Reply);
                continue;
            }

            if (result.Status == SendStatus.Delivered)
            {
                limits.Succeeded(domain);
            }

            return result;
        }
    }

    private async ValueTask<SendResult> SendOnceAsync(MimeMessage message, MailboxAddress envelopeFrom, CancellationToken stopping)
    {
        SmtpClient client;
        try
        {
            observer.Step(DeliveryStep.Connect);
            client = await pool.RentAsync(stopping);
        }
        catch (Exception e) when (RefusedAtConnect(e) is { } refusal)
        {
            return new SendResult(SendStatus.SenderRefused, refusal);
        }
        catch (Exception e) when (IsTransient(e) && !stopping.IsCancellationRequested)
        {
            return new SendResult(SendStatus.Deferred, $"connect: {e.Message}");
        }

        var reusable = false;
        try
        {
            observer.Step(DeliveryStep.Send);
            // Once the message is on its way it is not abandoned half sent: the send has its own timeout instead.
            await client.SendAsync(message, envelopeFrom, message.To.Mailboxes, CancellationToken.None);
            reusable = true;
            return SendResult.Delivered;
        }
        catch (SmtpCommandException e)
        {
            reusable = (int)e.StatusCode != 421;
            return Classify(e);
        }
        catch (Exception e) when (IsTransient(e))
        {
            return new SendResult(SendStatus.Deferred, e.Message);
        }
        finally
        {
            // Whatever happened, the connection goes back: broken ones are closed, and the pool's slot is free again.
            pool.Return(client, reusable);
        }
    }

    /// <summary>Which command the relay refused decides whose problem it is.</summary>
    private static SendResult Classify(SmtpCommandException e)
    {
        var code = (int)e.StatusCode;
        var reply = $"{code} {e.Message.Trim()}";
        if (code < 500)
        {
            return new SendResult(SendStatus.Deferred, reply, SendRateLimits.IsThrottling(code, reply));
        }

        return e.ErrorCode switch
        {
            SmtpErrorCode.RecipientNotAccepted => new SendResult(SendStatus.Rejected, reply),
            SmtpErrorCode.SenderNotAccepted => new SendResult(SendStatus.SenderRefused, $"MAIL FROM refused: {reply}"),
            _ when code == 530 => new SendResult(SendStatus.SenderRefused, $"authentication required: {reply}"),
            SmtpErrorCode.MessageNotAccepted => new SendResult(SendStatus.Refused, $"DATA refused: {reply}"),
            _ => new SendResult(SendStatus.Refused, reply),
        };
    }

    /// <summary>The relay turned us away before any message: wrong credentials, or a 5xx to the greeting, EHLO or AUTH.</summary>
    private static string? RefusedAtConnect(Exception e) => e switch
    {
        AuthenticationException => $"AUTH refused: {e.Message.Trim()}",
        SmtpCommandException { StatusCode: var status } when (int)status >= 500 => $"the relay refused the connection: {(int)status} {e.Message.Trim()}",
        _ => null,
    };

    // A relay's TLS refusal counts too: it is the relay's configuration, so the tiers give time to fix it, then it is parked.
    private static bool IsTransient(Exception e) => e is IOException or SocketException or TimeoutException
        or OperationCanceledException or SmtpProtocolException or ServiceNotConnectedException
        or ServiceNotAuthenticatedException or SslHandshakeException or SmtpCommandException
        or RelayTlsException;

    /// <summary>One relay-and-sender pair's breaker, and the reply that last counted against it.</summary>
    private sealed class SenderCircuit
    {
        public ResiliencePipeline<SendResult> Pipeline { get; set; } = ResiliencePipeline<SendResult>.Empty;

        public CircuitBreakerStateProvider State { get; } = new();

        public CircuitBreakerManualControl Control { get; } = new();

        /// <summary>When the circuit last opened (<see cref="Stopwatch.GetTimestamp"/>); null once a resume has closed it.</summary>
        public long? OpenedAt { get; set; }

        private readonly SemaphoreSlim closing = new(1, 1);

        /// <summary>Closes the circuit when the campaign was resumed after it opened: someone says the relay is fixed.</summary>
        /// <remarks>Every send that arrives meanwhile waits for the close, so none of them meets the old open circuit.</remarks>
        /// <param name="resumeMetAt">When this Worker first met the campaign's last resume (<see cref="Stopwatch.GetTimestamp"/>).</param>
        public async Task CloseIfResumedSinceAsync(long? resumeMetAt)
        {
            if (resumeMetAt is not { } resumed || OpenedAt is not { } opened || resumed <= opened)
            {
                return;
            }

            await closing.WaitAsync();
            try
            {
                if (OpenedAt is { } stillOpened && resumed > stillOpened)
                {
                    await Control.CloseAsync(CancellationToken.None);
                    OpenedAt = null;
                }
            }
            finally
            {
                closing.Release();
            }
        }

        public string? LastRefusal { get; set; }
    }

    [LoggerMessage(LogLevel.Debug, "SMTP attempt {Attempt} failed ({Reply}); retrying in {DelayMs} ms")]
    private partial void LogRetry(int attempt, string? reply, double delayMs);

    [LoggerMessage(LogLevel.Warning, "Relay {Relay} keeps refusing sender {Sender}: its campaigns are held; trying again in {Seconds} s ({Reply})")]
    private partial void LogCircuitOpened(string relay, string sender, double seconds, string? reply);
}
