using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using MimeKit;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Bulk.Tests.Infrastructure;

/// <summary>A mail received by <see cref="TestSmtpServer"/>: when it was accepted, its envelope sender (MAIL FROM), whether the session was under TLS, and the bytes that came after DATA.</summary>
public sealed record ReceivedMail(string Recipient, MimeMessage Message, DateTimeOffset At, string? EnvelopeFrom = null, bool OverTls = false, byte[]? Raw = null);

/// <summary>A real SMTP server (the SmtpServer library) on loopback that records mails and can refuse chosen recipients.</summary>
public sealed class TestSmtpServer : IAsyncDisposable
{
    public const string Username = "bulk";
    public const string Password = "s3cret";

    private readonly SmtpServer.SmtpServer server;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<string, int> rcptAttempts = new(StringComparer.OrdinalIgnoreCase);
    private int sessions;
    private int authenticated;

    private int plainTextTransactions;

    private TestSmtpServer(int port, X509Certificate2? certificate, bool tlsOnConnect)
    {
        Port = port;
        var options = new SmtpServerOptionsBuilder()
            .ServerName("test-relay")
            .Endpoint(e =>
            {
                e.Endpoint(new IPEndPoint(IPAddress.Loopback, port)).AllowUnsecureAuthentication(true).AuthenticationRequired(true);
                if (certificate is not null)
                {
                    // With a certificate the server offers STARTTLS, or speaks TLS from the first byte.
                    e.Certificate(certificate).IsSecure(tlsOnConnect);
                }
            })
            .Build();
        var services = new ServiceProvider();
        services.Add(new Store(this));
        services.Add(new Filter(this));
        services.Add(new Authenticator(this));
        server = new SmtpServer.SmtpServer(options, services);
        server.SessionCreated += (_, _) => Interlocked.Increment(ref sessions);
    }

    public int Port { get; }

    public ConcurrentQueue<ReceivedMail> Mails { get; } = new();

    /// <summary>SMTP sessions (TCP connections) opened by clients so far.</summary>
    public int Sessions => Volatile.Read(ref sessions);

    /// <summary>MAIL FROM commands received on a session that was not under TLS.</summary>
    public int PlainTextTransactions => Volatile.Read(ref plainTextTransactions);

    /// <summary>Sessions that authenticated successfully.</summary>
    public int Authenticated => Volatile.Read(ref authenticated);

    /// <summary>Decides the reply to RCPT TO: given the address and how many times it was offered before (0 the first time), null accepts.</summary>
    public Func<string, int, (int Code, string Text)?> RecipientRule { get; set; } = (_, _) => null;

    /// <summary>Decides the reply to MAIL FROM given the sender's address; null accepts.</summary>
    public Func<string, (int Code, string Text)?> SenderRule { get; set; } = _ => null;

    /// <summary>Decides the reply at the end of DATA given the recipient; null accepts.</summary>
    public Func<string, (int Code, string Text)?> DataRule { get; set; } = _ => null;

    /// <summary>Decides the reply to AUTH; null lets the credentials decide.</summary>
    public Func<(int Code, string Text)?> AuthRule { get; set; } = () => null;

    /// <summary>How long the server takes to accept each message after DATA: a slow relay.</summary>
    public TimeSpan AcceptDelay { get; set; } = TimeSpan.Zero;

    /// <summary>How many times a recipient was offered in RCPT TO.</summary>
    public int AttemptsFor(string recipient) => rcptAttempts.TryGetValue(recipient, out var n) ? n : 0;

    public static Task<TestSmtpServer> StartAsync() => StartAsync(null, tlsOnConnect: false);

    /// <summary>A server presenting <paramref name="certificate"/>: over STARTTLS, or from the first byte when <paramref name="tlsOnConnect"/>.</summary>
    public static Task<TestSmtpServer> StartAsync(X509Certificate2? certificate, bool tlsOnConnect)
    {
        var smtp = new TestSmtpServer(FreePort(), certificate, tlsOnConnect);
        _ = smtp.server.StartAsync(smtp.stop.Token);
        return Task.FromResult(smtp);
    }

    /// <summary>Waits until at least <paramref name="count"/> mails arrived, or fails after <paramref name="timeout"/>.</summary>
    public async Task WaitForMailsAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Mails.Count < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} mails within {timeout}, got {Mails.Count}.");
            }

            await Task.Delay(50);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        server.Shutdown();
        await stop.CancelAsync();
        try
        {
            await server.ShutdownTask.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            // Sessions still open are cut; the test is over.
        }

        stop.Dispose();
    }

    private static string Address(IMailbox mailbox) => $"{mailbox.User}@{mailbox.Host}";

    private sealed class Filter(TestSmtpServer owner) : IMailboxFilter
    {
        public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
        {
            if (!context.Pipe.IsSecure)
            {
                Interlocked.Increment(ref owner.plainTextTransactions);
            }

            if (owner.SenderRule(Address(from)) is { } refusal)
            {
                throw new SmtpResponseException(new SmtpResponse((SmtpReplyCode)refusal.Code, refusal.Text));
            }

            return Task.FromResult(true);
        }

        public Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
        {
            var address = Address(to);
            var before = owner.rcptAttempts.AddOrUpdate(address, 1, (_, n) => n + 1) - 1;
            if (owner.RecipientRule(address, before) is { } refusal)
            {
                throw new SmtpResponseException(new SmtpResponse((SmtpReplyCode)refusal.Code, refusal.Text));
            }

            return Task.FromResult(true);
        }
    }

    private sealed class Store(TestSmtpServer owner) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            if (owner.AcceptDelay > TimeSpan.Zero)
            {
                await Task.Delay(owner.AcceptDelay, cancellationToken);
            }

            if (transaction.To.Count > 0 && owner.DataRule(Address(transaction.To[0])) is { } refusal)
            {
                return new SmtpResponse((SmtpReplyCode)refusal.Code, refusal.Text);
            }

            var raw = buffer.ToArray();
            using var stream = new MemoryStream(raw);
            var message = await MimeMessage.LoadAsync(stream, cancellationToken);
            foreach (var to in transaction.To)
            {
                owner.Mails.Enqueue(new ReceivedMail(Address(to), message, DateTimeOffset.UtcNow,
                    transaction.From is { } from ? Address(from) : null, context.Pipe.IsSecure, raw));
            }

            return SmtpResponse.Ok;
        }
    }

    private sealed class Authenticator(TestSmtpServer owner) : IUserAuthenticator
    {
        public Task<bool> AuthenticateAsync(ISessionContext context, string user, string password, CancellationToken cancellationToken)
        {
            if (owner.AuthRule() is { } refusal)
            {
                throw new SmtpResponseException(new SmtpResponse((SmtpReplyCode)refusal.Code, refusal.Text));
            }

            var ok = user == Username && password == Password;
            if (ok)
            {
                Interlocked.Increment(ref owner.authenticated);
            }

            return Task.FromResult(ok);
        }
    }
}
