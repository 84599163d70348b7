using System.ComponentModel.DataAnnotations;

namespace Bulk.Worker.Smtp;

/// <summary>How the connection to the relay is protected (<c>Smtp__Security</c>).</summary>
/// <remarks>Wherever TLS is negotiated the relay's certificate is validated; a certificate failure never falls back to plain text.</remarks>
public enum SmtpSecurity
{
    /// <summary>Plain text, never TLS: only for a relay on the same host or a trusted network (smtp-sink, Mailpit).</summary>
    None,

    /// <summary>Plain connection upgraded with STARTTLS; a relay that does not offer STARTTLS is refused, never used in plain text.</summary>
    StartTls,

    /// <summary>TLS from the first byte (SMTPS, usually port 465).</summary>
    SslOnConnect,

    /// <summary>
    /// MailKit's choice: TLS on connect for port 465, otherwise STARTTLS <em>if the relay offers it</em>, else plain text.
    /// </summary>
    /// <remarks>
    /// Opportunistic, and so a downgrade anyone on the path can force by removing STARTTLS from the EHLO reply.
    /// The default without credentials, because it works with every relay out of the box; with credentials it is used
    /// only when set explicitly, since the downgrade would hand over the password (see <see cref="SmtpOptions.SecurityInEffect"/>).
    /// </remarks>
    Auto,
}

/// <summary>The relay a Worker delivers through (<c>Smtp__Host</c>, <c>Smtp__Port</c>, <c>Smtp__Security</c>, …).</summary>
public sealed class SmtpOptions : IValidatableObject
{
    public const string Section = "Smtp";

    [Required(ErrorMessage = "Smtp__Host is required: the SMTP relay to deliver through, e.g. 127.0.0.1")]
    public string? Host { get; set; }

    [Range(1, 65535, ErrorMessage = "Smtp__Port must be between 1 and 65535")]
    public int Port { get; set; } = 25;

    /// <summary>As configured; null when <c>Smtp__Security</c> is not set (see <see cref="SecurityInEffect"/>).</summary>
    [EnumDataType(typeof(SmtpSecurity), ErrorMessage = "Smtp__Security must be None, StartTls, SslOnConnect or Auto")]
    public SmtpSecurity? Security { get; set; }

    /// <summary>
    /// <see cref="Security"/> when set. Otherwise Auto without credentials; with <see cref="Username"/>,
    /// TLS is required (SslOnConnect on port 465, else StartTls), so that a relay whose STARTTLS was stripped on the way
    /// never receives the password in plain text. Plain-text AUTH takes an explicit None or Auto.
    /// </summary>
    public SmtpSecurity SecurityInEffect => Security
        ?? (string.IsNullOrEmpty(Username) ? SmtpSecurity.Auto
            : Port == 465 ? SmtpSecurity.SslOnConnect
            : SmtpSecurity.StartTls);

    /// <summary>
    /// A PEM file with the CA certificate(s) of a private relay (<c>Smtp__CaFile</c>): when set, the relay's certificate
    /// must chain to one of them, <em>instead of</em> to the system store; host name and dates are checked all the same.
    /// </summary>
    public string? CaFile { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>Connections a Worker keeps open to the relay and sends through concurrently.</summary>
    [Range(1, 64, ErrorMessage = "Smtp__MaxConnections must be between 1 and 64")]
    public int MaxConnections { get; set; } = 4;

    /// <summary>Longest wait for any one SMTP exchange before the connection is treated as dropped.</summary>
    [Range(1, 600, ErrorMessage = "Smtp__TimeoutSeconds must be between 1 and 600")]
    public int TimeoutSeconds { get; set; } = 30;

    /// <summary>Most messages a Worker sends per second, all domains together; 0 for no limit.</summary>
    [Range(0d, 1_000_000d, ErrorMessage = "Smtp__MaxMessagesPerSecond must be 0 (no limit) or a positive rate")]
    public double MaxMessagesPerSecond { get; set; }

    /// <summary>Most messages all Workers together send per second (a token bucket on the broker); 0 for no limit.</summary>
    [Range(0d, 100_000d, ErrorMessage = "Smtp__GlobalMaxMessagesPerSecond must be 0 (no limit) or a rate up to 100000")]
    public double GlobalMaxMessagesPerSecond { get; set; }

    /// <summary>Most messages a Worker sends per second to a recipient domain, e.g. <c>Smtp__DomainLimits__gmail.com=20</c>.</summary>
    public Dictionary<string, double> DomainLimits { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The name the Worker gives in EHLO; the machine's name when not set.</summary>
    public string? LocalDomain { get; set; }

    /// <summary>What the attributes cannot say: settings that go together, a file that must be usable, rates per domain.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(CaFile))
        {
            if (RelayTrust.Problem(CaFile) is { } problem)
            {
                yield return new ValidationResult($"Smtp__CaFile {problem}", [nameof(CaFile)]);
            }

            if (Security == SmtpSecurity.None)
            {
                // A CA file says TLS is wanted; None would silently ignore it.
                yield return new ValidationResult("Smtp__CaFile is set but Smtp__Security=None never uses TLS: set StartTls, SslOnConnect or Auto", [nameof(CaFile)]);
            }
        }

        if (string.IsNullOrEmpty(Username) != string.IsNullOrEmpty(Password))
        {
            yield return new ValidationResult("Smtp__Username and Smtp__Password are given together or not at all", [nameof(Username)]);
        }

        foreach (var (domain, rate) in DomainLimits)
        {
            if (rate is <= 0 or > 1_000_000)
            {
                yield return new ValidationResult($"Smtp__DomainLimits__{domain} must be a positive rate per second", [nameof(DomainLimits)]);
            }
        }
    }
}
