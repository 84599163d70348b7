using Microsoft.Extensions.Options;

namespace Bulk.Worker.Smtp;

/// <summary>Says at start how the Worker protects its connections to the relay, and why; warns when a password can go out in plain text.</summary>
public sealed partial class SmtpSecurityNotice(IOptions<SmtpOptions> options, ILogger<SmtpSecurityNotice> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var smtp = options.Value;
        var security = smtp.SecurityInEffect;
        var authenticates = !string.IsNullOrEmpty(smtp.Username);
        LogSecurity(smtp.Host!, smtp.Port, security,
            smtp.Security is not null ? "set by Smtp__Security"
            : authenticates ? "the default with Smtp__Username: the password never goes out in plain text"
            : "the default without Smtp__Username: STARTTLS when the relay offers it");
        if (authenticates && security is SmtpSecurity.None or SmtpSecurity.Auto)
        {
            LogPlainTextAuth(smtp.Host!, smtp.Port, security);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Information, "SMTP relay {Host}:{Port}: security {Security} ({Why})")]
    private partial void LogSecurity(string host, int port, SmtpSecurity security, string why);

    [LoggerMessage(LogLevel.Warning, "Smtp__Security={Security} with Smtp__Username: the password can go to {Host}:{Port} in plain text")]
    private partial void LogPlainTextAuth(string host, int port, SmtpSecurity security);
}
