using Bulk.Broker.Suppressions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Hosting;

/// <summary>The compose file's placeholder API key and unsubscribe secret: published in the repository, so anyone can use them.</summary>
public static partial class DemoValues
{
    /// <summary>What every placeholder contains (<c>demo-key-change-me-…</c>, <c>demo-secret-change-me-…</c>).</summary>
    public const string Marker = "change-me";

    public static bool IsDemo(string? value) => value?.Contains(Marker, StringComparison.OrdinalIgnoreCase) == true;

    [LoggerMessage(LogLevel.Warning, "{Setting} is the compose file's demo value, which anyone can read in the repository; set {Variable}")]
    public static partial void LogDemoValue(ILogger logger, string setting, string variable);
}

/// <summary>Says at start when <c>Unsubscribe__Secret</c> is the demo value: with it anyone can forge unsubscribe links.</summary>
public sealed class DemoSecretWarning(IOptions<UnsubscribeOptions> options, ILogger<DemoSecretWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (DemoValues.IsDemo(options.Value.Secret))
        {
            DemoValues.LogDemoValue(logger, "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
