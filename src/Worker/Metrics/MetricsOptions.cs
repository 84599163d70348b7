using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Bulk.Worker.Metrics;

/// <summary>Where a Worker serves its metrics for Prometheus (<c>Metrics__Urls</c>); no listener unless set.</summary>
public sealed partial class MetricsOptions : IValidatableObject
{
    public const string Section = "Metrics";

    private const string Rule = "Metrics__Urls must be http://host:port URLs separated by ';', e.g. http://0.0.0.0:9464 (metrics at /metrics)";

    /// <summary>URLs to listen on, separated by <c>;</c> like ASP.NET Core's <c>--urls</c>; 0.0.0.0, [::] or * for every address.</summary>
    public string? Urls { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(Urls);

    /// <summary>The URLs as <see cref="System.Net.HttpListener"/> prefixes: every-address hosts become its <c>+</c>.</summary>
    /// <remarks>HttpListener matches a request's Host header against its prefixes: a prefix of http://0.0.0.0:9464/
    /// would match no scrape of http://worker:9464/.</remarks>
    /// <exception cref="FormatException">A URL is not http://host:port.</exception>
    public IReadOnlyList<string> ToPrefixes()
    {
        var prefixes = new List<string>();
        foreach (var url in (Urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = HttpUrl().Match(url);
            if (!match.Success || !int.TryParse(match.Groups["port"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                || port is < 1 or > 65535)
            {
                throw new FormatException($"'{url}' is not http://host:port");
            }

            var host = match.Groups["host"].Value;
            if (host is "0.0.0.0" or "[::]" or "*" or "+")
            {
                host = "+";
            }
            else if (Uri.CheckHostName(host.Trim('[', ']')) == UriHostNameType.Unknown)
            {
                throw new FormatException($"'{url}' has no valid host");
            }

            prefixes.Add($"http://{host}:{port}/");
        }

        return prefixes.Count > 0 ? prefixes : throw new FormatException("names no URL");
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }

        string? problem = null;
        try
        {
            ToPrefixes();
        }
        catch (FormatException e)
        {
            problem = e.Message;
        }

        if (problem is not null)
        {
            yield return new ValidationResult($"{Rule} ({problem})", [nameof(Urls)]);
        }
    }

    [GeneratedRegex(@"^http://(?<host>\[[^\]]+\]|[^/:\[\]]+):(?<port>[0-9]+)/?$", RegexOptions.IgnoreCase)]
    private static partial Regex HttpUrl();
}
