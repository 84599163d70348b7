using System.Globalization;
using System.Text;

namespace Bulk.Tests.Infrastructure;

/// <summary>One sample of a Prometheus scrape: a metric name, its labels and its value.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>Reads the Prometheus text exposition format (version 0.0.4), as Prometheus itself would scrape it.</summary>
public sealed class PrometheusText
{
    private PrometheusText(string text, IReadOnlyList<PrometheusSample> samples)
    {
        Text = text;
        Samples = samples;
    }

    public string Text { get; }

    public IReadOnlyList<PrometheusSample> Samples { get; }

    /// <summary>GETs <paramref name="url"/> with no credentials and parses the answer, which must be 200 in the text format.</summary>
    public static async Task<PrometheusText> ScrapeAsync(string url)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {url}: {(int)response.StatusCode} {text}");
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return Parse(text);
    }

    public static PrometheusText Parse(string text)
    {
        var samples = new List<PrometheusSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var at = 0;
            while (at < line.Length && line[at] is not ('{' or ' '))
            {
                at++;
            }

            var name = line[..at];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (at < line.Length && line[at] == '{')
            {
                at = ReadLabels(line, at + 1, labels);
            }

            // The value, then an optional timestamp.
            var value = line[at..].Trim().Split(' ')[0];
            samples.Add(new PrometheusSample(name, labels, ParseValue(value)));
        }

        return new PrometheusText(text, samples);
    }

    /// <summary>The samples named <paramref name="name"/> whose labels include every one of <paramref name="labels"/> ("name=value").</summary>
    public IReadOnlyList<PrometheusSample> Find(string name, params string[] labels) =>
        [.. Samples.Where(s => s.Name == name && labels.All(l => l.Split('=', 2) is [var key, var value] && s.Labels.GetValueOrDefault(key) == value))];

    /// <summary>The sum of the samples <see cref="Find"/> finds; null when there is none.</summary>
    public double? Sum(string name, params string[] labels) => Find(name, labels) is { Count: > 0 } found ? found.Sum(s => s.Value) : null;

    private static int ReadLabels(string line, int at, Dictionary<string, string> labels)
    {
        while (line[at] != '}')
        {
            var equals = line.IndexOf('=', at);
            var key = line[at..equals].Trim();
            at = equals + 2; // past ="
            var value = new StringBuilder();
            for (; line[at] != '"'; at++)
            {
                if (line[at] == '\\')
                {
                    at++;
                    value.Append(line[at] == 'n' ? '\n' : line[at]);
                }
                else
                {
                    value.Append(line[at]);
                }
            }

            labels[key] = value.ToString();
            at++; // past the closing quote
            if (line[at] == ',')
            {
                at++;
            }
        }

        return at + 1;
    }

    private static double ParseValue(string value) => value switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture),
    };
}
