using System.Collections.Concurrent;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Smtp;

/// <summary>A few authenticated SMTP connections, reused for message after message.</summary>
/// <remarks>
/// At most <see cref="SmtpOptions.MaxConnections"/> are open at once. A connection goes back to the pool after a
/// send unless the send broke it; a broken one is dropped and the next rent opens a fresh one.
/// MailKit pipelines MAIL/RCPT/DATA itself when the server offers PIPELINING.
/// </remarks>
public sealed partial class SmtpConnectionPool(IOptions<SmtpOptions> options, SmtpMetrics metrics, ILogger<SmtpConnectionPool> logger) : IAsyncDisposable
{
    private readonly SmtpOptions smtp = options.Value;
    private readonly SmtpSecurity security = options.Value.SecurityInEffect;
    private readonly RelayTrust? trust = string.IsNullOrWhiteSpace(options.Value.CaFile) ? null : RelayTrust.Load(options.Value.CaFile);
    private readonly SemaphoreSlim slots = new(options.Value.MaxConnections, options.Value.MaxConnections);
    private readonly ConcurrentQueue<SmtpClient> idle = new();

    /// <summary>Waits for a free slot (cancellable), then hands out an idle connection or opens a new one.</summary>
    public async Task<SmtpClient> RentAsync(CancellationToken cancellationToken)
    {
        await slots.WaitAsync(cancellationToken);
        try
        {
            while (idle.TryDequeue(out var client))
            {
                if (client.IsConnected)
                {
                    metrics.Reused();
                    return client;
                }

                client.Dispose();
                metrics.Closed(idle: true);
            }

            var opened = await OpenAsync(cancellationToken);
            metrics.Opened();
            return opened;
        }
        catch
        {
            slots.Release();
            throw;
        }
    }

    /// <summary>Gives a connection back: kept for the next send when <paramref name="reusable"/>, else closed.</summary>
    public void Return(SmtpClient client, bool reusable)
    {
        if (reusable && client.IsConnected)
        {
            metrics.Idled();
            idle.Enqueue(client);
        }
        else
        {
            client.Dispose();
            metrics.Closed(idle: false);
        }

        slots.Release();
    }

    private async Task<SmtpClient> OpenAsync(CancellationToken cancellationToken)
    {
        var client = new SmtpClient { Timeout = smtp.TimeoutSeconds * 1000 };
        if (!string.IsNullOrEmpty(smtp.LocalDomain))
        {
            client.LocalDomain = smtp.LocalDomain;
        }

        // Without a CA file MailKit's own check stands: the system store, host name, dates, revocation.
        string? refusal = null;
        if (trust is not null)
        {
            client.ServerCertificateValidationCallback = (_, certificate, chain, errors) => trust.Accepts(certificate, chain, errors, out refusal);
        }

        try
        {
            // Our own socket, so that Nagle's algorithm is off: the last small write of each message (the final
            // "." of DATA) goes at once instead of waiting for the relay's delayed ACK, which costs milliseconds a mail.
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(smtp.Host!, smtp.Port, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            await client.ConnectAsync(socket, smtp.Host!, smtp.Port, ToMailKit(security), cancellationToken);
            if (!string.IsNullOrEmpty(smtp.Username))
            {
                await client.AuthenticateAsync(smtp.Username, smtp.Password ?? "", cancellationToken);
            }
        }
        catch (SslHandshakeException e)
        {
            client.Dispose();
            var reason = refusal ?? OneLine(e.Message);
            LogTlsFailed(smtp.Host!, smtp.Port, reason);
            throw new RelayTlsException($"TLS with {smtp.Host}:{smtp.Port} failed: {reason}", e);
        }
        catch (NotSupportedException e) when (security == SmtpSecurity.StartTls)
        {
            // MailKit's answer when EHLO lacks STARTTLS: the one place a downgrade to plain text could have happened.
            client.Dispose();
            LogStartTlsNotOffered(smtp.Host!, smtp.Port, SecurityName());
            throw new RelayTlsException($"{smtp.Host}:{smtp.Port} does not offer STARTTLS, and {SecurityName()} never sends in plain text", e);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        LogOpened(smtp.Host!, smtp.Port);
        return client;
    }

    /// <summary>How the security in effect came about, for a reason a person reads.</summary>
    private string SecurityName() => smtp.Security is null ? $"{security} (the default with Smtp__Username)" : $"Smtp__Security={security}";

    private static SecureSocketOptions ToMailKit(SmtpSecurity security) => security switch
    {
        SmtpSecurity.None => SecureSocketOptions.None,
        SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.Auto,
    };

    /// <summary>MailKit's handshake message is a bulleted multi-line text; a reply and a log line want it on one line.</summary>
    private static string OneLine(string message) =>
        string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(line => line.TrimStart('\u2022', ' ')));

    public async ValueTask DisposeAsync()
    {
        while (idle.TryDequeue(out var client))
        {
            try
            {
                using var quit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.DisconnectAsync(quit: true, quit.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or MailKit.ProtocolException or SmtpCommandException)
            {
                // Closing anyway; the relay may already have dropped us.
            }

            client.Dispose();
            metrics.Closed(idle: true);
        }

        slots.Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Opened SMTP connection to {Host}:{Port}")]
    private partial void LogOpened(string host, int port);

    [LoggerMessage(LogLevel.Warning, "TLS with SMTP relay {Host}:{Port} failed, nothing sent on this connection: {Reason}")]
    private partial void LogTlsFailed(string host, int port, string reason);

    [LoggerMessage(LogLevel.Warning, "SMTP relay {Host}:{Port} does not offer STARTTLS; {Security} refuses to send in plain text")]
    private partial void LogStartTlsNotOffered(string host, int port, string security);
}
