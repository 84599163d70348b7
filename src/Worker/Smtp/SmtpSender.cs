using System.Net.Sockets;
using Bulk.Worker.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;
using Polly;
using Polly.Retry;

namespace Bulk.Worker.Smtp;

public enum SendStatus
{
    /// <summary>The relay accepted the message (250 after DATA).</summary>
    Delivered,

    /// <summary>The relay refused with a 5xx: retrying cannot help.</summary>
    Rejected,

    /// <summary>A 4xx, a timeout or a dropped connection, still failing after the immediate retries.</summary>
    Deferred,
}

/// <summary>What happened to one message, with the relay's reply when there was one.</summary>
/// <param name="Throttled">The relay refused because we send too fast: slow down, do not spend a retry.</param>
public readonly record struct SendResult(SendStatus Status, string? Reply = null, bool Throttled = false)
{
    public static readonly SendResult Delivered = new(SendStatus.Delivered);
}

/// <summary>Sends one message through the pool, retrying transient failures with exponential backoff and jitter.</summary>
/// <remarks>SMTP semantics decide: 5xx is permanent and never retried, 4xx and broken connections are transient.</remarks>
public sealed partial class SmtpSender
{
    /// <summary>A relay that keeps saying "too many" is waited out this many times before the attempt counts as failed.</summary>
    private const int MaxThrottleWaits = 8;

    private readonly SmtpConnectionPool pool;
    private readonly SendRateLimits limits;
    private readonly ILogger<SmtpSender> logger;
    private readonly ResiliencePipeline<SendResult> pipeline;

    public SmtpSender(SmtpConnectionPool pool, SendRateLimits limits, IOptions<DeliveryOptions> options, ILogger<SmtpSender> logger)
    {
        this.pool = pool;
        this.limits = limits;
        this.logger = logger;
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

        pipeline = builder.Build();
    }

    /// <summary>Sends <paramref name="message"/> to its To addresses with <paramref name="envelopeFrom"/> as MAIL FROM.</summary>
    /// <remarks><paramref name="stopping"/> cancels waiting, never a send under way.</remarks>
    /// <exception cref="OperationCanceledException">Stopped before the message was handed to the relay.</exception>
    public async Task<SendResult> SendAsync(MimeMessage message, MailboxAddress envelopeFrom, CancellationToken stopping) =>
        await pipeline.ExecuteAsync(static (state, token) => state.self.AttemptAsync(state.message, state.envelopeFrom, token),
            (self: this, message, envelopeFrom), stopping);

    /// <summary>One attempt, in the relay's time: within the rate limits, and waiting out "too many" answers.</summary>
    private async ValueTask<SendResult> AttemptAsync(MimeMessage message, MailboxAddress envelopeFrom, CancellationToken stopping)
    {
        var domain = message.To.Mailboxes.First().Domain;
        for (var waits = 0; ; waits++)
        {
            await limits.WaitTurnAsync(domain, stopping);
            var result = await SendOnceAsync(message, envelopeFrom, stopping);
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
            client = await pool.RentAsync(stopping);
        }
        catch (Exception e) when (IsTransient(e) && !stopping.IsCancellationRequested)
        {
            return new SendResult(SendStatus.Deferred, $"connect: {e.Message}");
        }

        try
        {
            // Once the message is on its way it is not abandoned half sent: the send has its own timeout instead.
            await client.SendAsync(message, envelopeFrom, message.To.Mailboxes, CancellationToken.None);
            pool.Return(client, reusable: true);
            return SendResult.Delivered;
        }
        catch (SmtpCommandException e)
        {
            var code = (int)e.StatusCode;
            pool.Return(client, reusable: code != 421 && client.IsConnected);
            var reply = $"{code} {e.Message.Trim()}";
            return code >= 500
                ? new SendResult(SendStatus.Rejected, reply)
                : new SendResult(SendStatus.Deferred, reply, SendRateLimits.IsThrottling(code, reply));
        }
        catch (Exception e) when (IsTransient(e))
        {
            pool.Return(client, reusable: false);
            return new SendResult(SendStatus.Deferred, e.Message);
        }
    }

    // A relay's TLS refusal counts too: it is the relay's configuration, so the tiers give time to fix it, then it is parked.
    private static bool IsTransient(Exception e) => e is IOException or SocketException or TimeoutException
        or OperationCanceledException or SmtpProtocolException or ServiceNotConnectedException
        or ServiceNotAuthenticatedException or AuthenticationException or SslHandshakeException or SmtpCommandException
        or RelayTlsException;

    [LoggerMessage(LogLevel.Debug, "SMTP attempt {Attempt} failed ({Reply}); retrying in {DelayMs} ms")]
    private partial void LogRetry(int attempt, string? reply, double delayMs);
}
