namespace Bulk.Broker.Hosting;

/// <summary>Turns the options validation failures a host throws at start into the one line an operator reads.</summary>
public static class ConfigurationErrors
{
    /// <summary>Extracts the messages of our own validators from the framework's wrapping text.</summary>
    public static string OneLine(string process, IEnumerable<string> failures)
    {
        var messages = failures.Select(Unwrap).Distinct();
        return $"{process}: invalid configuration: {string.Join("; ", messages)}";
    }

    // The data-annotations validator reports "DataAnnotation validation failed for 'X' members: 'Y' with the error: 'MSG'."
    // (Not the [OptionsValidator] source generator: its [Range] ignores ErrorMessage, dotnet/runtime#123137.)
    private static string Unwrap(string failure)
    {
        const string marker = "with the error: '";
        var at = failure.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return failure;
        }

        var message = failure[(at + marker.Length)..];
        return message.EndsWith("'.", StringComparison.Ordinal) ? message[..^2] : message;
    }
}
