using System.ComponentModel.DataAnnotations;

namespace Bulk.Front.Access;

/// <summary>
/// What the Front believes of a request before it looks for a caller (<c>Front__AllowedHosts</c>, <c>Front__TrustProxy</c>,
/// <c>Front__WrongKeysPerMinute</c>): the name it was sent to, the proxy it came through, how many wrong keys its client sent.
/// </summary>
/// <remarks>Bound to the same section as <see cref="FrontOptions"/>: the settings are the Front's, the concern is apart.</remarks>
public sealed class EdgeOptions : IValidatableObject
{
    /// <summary>
    /// Host names the Front answers to besides those it listens on (and any IP address); <c>*</c> for any. Without keys a
    /// foreign name is refused, since that is what DNS rebinding sends; with keys any name is taken unless this lists some.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// A proxy on this machine forwards to the Front: its <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are believed.
    /// Off, a keyless Front refuses requests that carry forwarding headers, since through a proxy every client looks local.
    /// </summary>
    public bool TrustProxy { get; set; }

    /// <summary>Requests with a wrong API key one client address may send per minute (bursts up to the same number) before it is answered 429; 0 for no limit.</summary>
    [Range(0, 1_000_000, ErrorMessage = "Front__WrongKeysPerMinute must be 0 (no limit) or up to 1000000")]
    public int WrongKeysPerMinute { get; set; } = 10;

    /// <summary><see cref="AllowedHosts"/> was given both as one value and as indexed keys.</summary>
    private bool allowedHostsInBothForms;

    /// <summary>Reads <c>Front__AllowedHosts=a,b</c> given as one value, which the binder drops (as <see cref="FrontOptions.ReadListSettings"/>).</summary>
    public void ReadListSettings(IConfiguration configuration) =>
        allowedHostsInBothForms = Bulk.Broker.Hosting.ListSettings.Apply(configuration, $"{FrontOptions.Section}:{nameof(AllowedHosts)}", AllowedHosts).BothForms;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (allowedHostsInBothForms)
        {
            yield return new ValidationResult(
                Bulk.Broker.Hosting.ListSettings.BothFormsError($"{FrontOptions.Section}__{nameof(AllowedHosts)}"), [nameof(AllowedHosts)]);
        }

        for (var i = 0; i < AllowedHosts.Count; i++)
        {
            if (!Access.AllowedHosts.IsValidEntry(AllowedHosts[i]))
            {
                yield return new ValidationResult(
                    $"Front__AllowedHosts__{i} must be a host name without port (bulk.example.com), or * for any", [nameof(AllowedHosts)]);
            }
        }
    }
}
