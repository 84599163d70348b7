namespace Bulk.Worker.Smtp;

/// <summary>The relay could not be reached with the TLS that <c>Smtp__Security</c> asks for, so nothing was sent.</summary>
/// <remarks>
/// A relay's certificate or STARTTLS support is its configuration, not a recipient's: the send is deferred through the
/// delay tiers (time to fix the relay, then replay the dead letters), and never retried in plain text.
/// </remarks>
public sealed class RelayTlsException(string message, Exception innerException) : Exception(message, innerException);
