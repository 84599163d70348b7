using System.Security.Cryptography;
using System.Text;
using Bulk.Broker.Hosting;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>The API keys this Front accepts (<c>Front__ApiKeys</c>, <c>Front__ApiKeysFile</c>); it says at start which mode that puts it in.</summary>
/// <remarks>
/// A Front nobody configured must not be an open relay for whoever can reach its port, so without keys it answers
/// loopback clients only. Keys are kept as SHA-256 digests and compared with a fixed-time comparison against every
/// key, so neither the time taken nor an early exit tells a caller how much of a key it guessed.
/// </remarks>
public sealed partial class ApiKeys : IHostedService
{
    private readonly byte[][] digests;
    private readonly string[] demoKeys;
    private readonly ILogger<ApiKeys> logger;

    public ApiKeys(IOptions<FrontOptions> options, ILogger<ApiKeys> logger)
    {
        this.logger = logger;
        var keys = options.Value.AllApiKeys();
        digests = [.. keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)))];
        var configured = options.Value.ApiKeys;
        demoKeys =
        [
            .. Enumerable.Range(0, configured.Count).Where(i => DemoValues.IsDemo(configured[i])).Select(i => $"Front__ApiKeys__{i}"),
            .. keys.Skip(configured.Count).Any(DemoValues.IsDemo) ? ["A key in Front__ApiKeysFile"] : Array.Empty<string>(),
        ];
    }

    /// <summary>No key is configured: only clients on this machine are served.</summary>
    public bool LoopbackOnly => digests.Length == 0;

    /// <summary>The number of the key presented, or null when it is none of them.</summary>
    public int? Find(string presented)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var match = -1;
        for (var i = 0; i < digests.Length; i++)
        {
            // No early exit: every key is compared whatever matched before.
            var equal = CryptographicOperations.FixedTimeEquals(digest, digests[i]);
            match = equal ? i : match;
        }

        return match >= 0 ? match : null;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (LoopbackOnly)
        {
            LogLoopbackOnly();
        }
        else
        {
            LogKeys(digests.Length);
        }

        foreach (var setting in demoKeys)
        {
            DemoValues.LogDemoValue(logger, setting, "BULK_API_KEY");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "No API key is configured (Front__ApiKeys, Front__ApiKeysFile): serving loopback clients only")]
    private partial void LogLoopbackOnly();

    [LoggerMessage(LogLevel.Information, "{Count} API keys configured: every call except health, the page and unsubscribe links needs one")]
    private partial void LogKeys(int count);
}
