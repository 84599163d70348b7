using System.Security.Cryptography;
using System.Text;
using Bulk.Broker.Hosting;
using Microsoft.Extensions.Options;

namespace Bulk.Front.Access;

/// <summary>A key this Front accepts: its number (what the rate limit counts by) and whether it is an admin key.</summary>
public readonly record struct AcceptedKey(int Number, bool Admin);

/// <summary>The API keys this Front accepts (<c>Front__ApiKeys</c>, <c>Front__AdminKeys</c> and their files); it says at start which mode that puts it in.</summary>
/// <remarks>
/// An ordinary key is a tenant: it sees and steers its own campaigns. An admin key also sees what all tenants share
/// (the suppression list, the dead letters) and every campaign.
/// A Front nobody configured must not be an open relay for whoever can reach its port, so without keys it answers
/// loopback clients only. Keys are kept as SHA-256 digests and compared with a fixed-time comparison against every
/// key, so neither the time taken nor an early exit tells a caller how much of a key it guessed.
/// </remarks>
public sealed partial class ApiKeys : IHostedService
{
    private readonly byte[][] digests;
    private readonly bool[] admin;
    private readonly string[] demoKeys;
    private readonly ILogger<ApiKeys> logger;

    public ApiKeys(IOptions<FrontOptions> options, ILogger<ApiKeys> logger)
    {
        this.logger = logger;
        var keys = options.Value.AllApiKeys();
        var admins = options.Value.AllAdminKeys();
        // A key listed as both is an admin key: the later entry wins in Find.
        digests = [.. keys.Concat(admins).Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)))];
        admin = [.. keys.Select(_ => false), .. admins.Select(_ => true)];
        AdminCount = admins.Distinct(StringComparer.Ordinal).Count();
        demoKeys = [.. DemoSettings("ApiKeys", options.Value.ApiKeys, keys), .. DemoSettings("AdminKeys", options.Value.AdminKeys, admins)];
    }

    /// <summary>How many distinct admin keys there are.</summary>
    public int AdminCount { get; }

    /// <summary>No key is configured: only clients on this machine are served.</summary>
    public bool LoopbackOnly => digests.Length == 0;

    /// <summary>The key presented, or null when it is none of them.</summary>
    public AcceptedKey? Find(string presented)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var match = -1;
        for (var i = 0; i < digests.Length; i++)
        {
            // No early exit: every key is compared whatever matched before.
            var equal = CryptographicOperations.FixedTimeEquals(digest, digests[i]);
            match = equal ? i : match;
        }

        return match >= 0 ? new AcceptedKey(match, admin[match]) : null;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (LoopbackOnly)
        {
            LogLoopbackOnly();
        }
        else
        {
            LogKeys(digests.Length, AdminCount);
        }

        foreach (var setting in demoKeys)
        {
            DemoValues.LogDemoValue(logger, setting, "BULK_API_KEY");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The settings of <paramref name="name"/> that hold the compose file's demo key.</summary>
    private static IEnumerable<string> DemoSettings(string name, List<string> configured, IReadOnlyList<string> all) =>
    [
        .. Enumerable.Range(0, configured.Count).Where(i => DemoValues.IsDemo(configured[i])).Select(i => $"Front__{name}__{i}"),
        .. all.Skip(configured.Count).Any(DemoValues.IsDemo) ? [$"A key in Front__{name}File"] : Array.Empty<string>(),
    ];

    [LoggerMessage(LogLevel.Warning, "No API key is configured (Front__ApiKeys, Front__ApiKeysFile): serving loopback clients only")]
    private partial void LogLoopbackOnly();

    [LoggerMessage(LogLevel.Information, "{Count} API keys configured ({AdminCount} admin): every call except health, the page and unsubscribe links needs one")]
    private partial void LogKeys(int count, int adminCount);
}
