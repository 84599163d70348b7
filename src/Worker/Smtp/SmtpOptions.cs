using System.ComponentModel.DataAnnotations;

namespace Bulk.Worker.Smtp;

public enum SmtpSecurity
{
    None,
    StartTls,
    SslOnConnect,
    Auto,
}

/// <summary>The relay a Worker delivers through (<c>Smtp__Host</c>, <c>Smtp__Port</c>, <c>Smtp__Security</c>, …).</summary>
public sealed class SmtpOptions : IValidatableObject
{
    public const string Section = "Smtp";

    public string? Host { get; set; }

    public int Port { get; set; } = 25;

    public SmtpSecurity Security { get; set; } = SmtpSecurity.Auto;

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>Connections a Worker keeps open to the relay and sends through concurrently.</summary>
    public int MaxConnections { get; set; } = 4;

    /// <summary>Longest wait for any one SMTP exchange before the connection is treated as dropped.</summary>
    public int TimeoutSeconds { get; set; } = 30;

    /// <summary>Most messages a Worker sends per second, all domains together; 0 for no limit.</summary>
    public double MaxMessagesPerSecond { get; set; }

    /// <summary>Most messages all Workers together send per second (a token bucket on the broker); 0 for no limit.</summary>
    public double GlobalMaxMessagesPerSecond { get; set; }

    /// <summary>Most messages a Worker sends per second to a recipient domain, e.g. <c>Smtp__DomainLimits__gmail.com=20</c>.</summary>
    public Dictionary<string, double> DomainLimits { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The name the Worker gives in EHLO; the machine's name when not set.</summary>
    public string? LocalDomain { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            yield return new ValidationResult("Smtp__Host is required: the SMTP relay to deliver through, e.g. 127.0.0.1", [nameof(Host)]);
        }

        if (Port is < 1 or > 65535)
        {
            yield return new ValidationResult("Smtp__Port must be between 1 and 65535", [nameof(Port)]);
        }

        if (!Enum.IsDefined(Security))
        {
            yield return new ValidationResult("Smtp__Security must be None, StartTls, SslOnConnect or Auto", [nameof(Security)]);
        }

        if (string.IsNullOrEmpty(Username) != string.IsNullOrEmpty(Password))
        {
            yield return new ValidationResult("Smtp__Username and Smtp__Password are given together or not at all", [nameof(Username)]);
        }

        if (MaxConnections is < 1 or > 64)
        {
            yield return new ValidationResult("Smtp__MaxConnections must be between 1 and 64", [nameof(MaxConnections)]);
        }

        if (MaxMessagesPerSecond is < 0 or > 1_000_000)
        {
            yield return new ValidationResult("Smtp__MaxMessagesPerSecond must be 0 (no limit) or a positive rate", [nameof(MaxMessagesPerSecond)]);
        }

        if (GlobalMaxMessagesPerSecond is < 0 or > 100_000)
        {
            yield return new ValidationResult("Smtp__GlobalMaxMessagesPerSecond must be 0 (no limit) or a rate up to 100000", [nameof(GlobalMaxMessagesPerSecond)]);
        }

        foreach (var (domain, rate) in DomainLimits)
        {
            if (rate is <= 0 or > 1_000_000)
            {
                yield return new ValidationResult($"Smtp__DomainLimits__{domain} must be a positive rate per second", [nameof(DomainLimits)]);
            }
        }

        if (TimeoutSeconds is < 1 or > 600)
        {
            yield return new ValidationResult("Smtp__TimeoutSeconds must be between 1 and 600", [nameof(TimeoutSeconds)]);
        }
    }
}
