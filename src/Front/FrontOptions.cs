using System.ComponentModel.DataAnnotations;
using Bulk.Broker.Hosting;
using Microsoft.Extensions.Configuration;

namespace Bulk.Front;

/// <summary>Who may use the Front and what one POST may ask for (<c>Front__ApiKeys__0</c>, <c>Front__MaxRecipients</c>, …).</summary>
public sealed class FrontOptions : IValidatableObject
{
    public const string Section = "Front";

    [Range(1, 10_000_000, ErrorMessage = "Front__MaxRecipients must be between 1 and 10000000")]
    public int MaxRecipients { get; set; } = 100_000;

    [Range(1024d, 1024d * 1024 * 1024, ErrorMessage = "Front__MaxBodyBytes must be between 1024 and 1073741824")]
    public long MaxBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// The memory campaigns being read, checked and published may hold together: each POST holds
    /// <see cref="Campaigns.IntakeMemoryBudget.CostPerBodyByte"/> per byte of body it has received, and one that does
    /// not fit beside the others is answered 503, unless it would be alone (<see cref="Campaigns.IntakeMemoryBudget"/>).
    /// </summary>
    /// <remarks>
    /// 512 MiB fits a 1 GB container beside the rest of the Front (about 80 MB at start, a few hundred MB with a long
    /// ledger): it lets 25 campaigns of 1 MB be read at once, or one of the largest alone.
    /// </remarks>
    [Range(1024d * 1024, 1024d * 1024 * 1024 * 1024, ErrorMessage = "Front__MaxIntakeMemoryBytes must be between 1048576 and 1099511627776")]
    public long MaxIntakeMemoryBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>How long the whole body of a <c>POST /campaigns</c> may take to arrive: a client still sending it then is
    /// answered 408 and its connection closed.</summary>
    /// <remarks>
    /// Kestrel's minimum data rate (240 bytes/s) lets a body of 64 MiB take three days; a POST under way holds a slot of
    /// its key (<see cref="MaxPostsInFlightPerKey"/>) and what it sent of the intake memory, so it must end. 120 s asks
    /// 0.56 MB/s of a client sending the largest body allowed, 8.5 KB/s of one sending 1 MB.
    /// </remarks>
    [Range(1, 3600, ErrorMessage = "Front__BodyDeadlineSeconds must be between 1 and 3600")]
    public int BodyDeadlineSeconds { get; set; } = 120;

    /// <summary><c>POST /campaigns</c> one API key (or, without keys, one client address) may have under way at once; 0 for no limit.</summary>
    /// <remarks>Each holds intake memory and a connection until its body is read and its campaign published: one key
    /// that opens many slow POSTs must not take what every other key needs. 8 is more than a client posting one campaign
    /// after another needs, and leaves the rest of the budget to the other keys.</remarks>
    [Range(0, 100_000, ErrorMessage = "Front__MaxPostsInFlightPerKey must be 0 (no limit) or up to 100000")]
    public int MaxPostsInFlightPerKey { get; set; } = 8;

    /// <summary>
    /// The most a text or html template may be, in UTF-8 bytes; no other value in a campaign may be larger either.
    /// </summary>
    /// <remarks>
    /// 1 MiB is ten times what Gmail shows before it clips a message, and a twentieth of what relays take for a whole
    /// message with attachments (SendGrid 30 MB, Mailgun 25 MB). The limit is what lets the Front refuse a huge
    /// value as it streams in, instead of holding it whole (and twice over, as text) before saying no.
    /// </remarks>
    [Range(1024, 16 * 1024 * 1024, ErrorMessage = "Front__MaxTemplateBytes must be between 1024 and 16777216")]
    public int MaxTemplateBytes { get; set; } = 1024 * 1024;

    /// <summary>Values one recipient's data may hold, nested members and elements included.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Front__MaxDataValuesPerRecipient must be between 1 and 1000000")]
    public int MaxDataValuesPerRecipient { get; set; } = 1000;

    /// <summary>Values all recipients' data may hold together: each costs the Front memory until the campaign is enqueued.</summary>
    [Range(1, 100_000_000, ErrorMessage = "Front__MaxDataValues must be between 1 and 100000000")]
    public int MaxDataValues { get; set; } = 1_000_000;

    /// <summary>How long the Front waits for the broker's confirm before it answers 503.</summary>
    [Range(1, 300, ErrorMessage = "Front__PublishTimeoutSeconds must be between 1 and 300")]
    public int PublishTimeoutSeconds { get; set; } = 15;

    /// <summary>Keys accepted as <c>Authorization: Bearer</c>; with none (and no file) only loopback clients are served.</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>A file with one API key per line (blank lines and lines starting with # are ignored).</summary>
    public string? ApiKeysFile { get; set; }

    /// <summary>Keys that also see what all tenants share: the suppression list, the dead letters, every campaign.</summary>
    public List<string> AdminKeys { get; set; } = [];

    /// <summary>A file with one admin key per line, as <see cref="ApiKeysFile"/>.</summary>
    public string? AdminKeysFile { get; set; }

    /// <summary>Addresses (<c>news@example.com</c>) and domains (<c>@example.com</c>) a campaign may be sent from; empty allows any.</summary>
    public List<string> AllowedSenders { get; set; } = [];

    /// <summary>Campaigns one API key (or, without keys, one client address) may post per minute, in bursts up to the same number; 0 for no limit.</summary>
    [Range(0, 1_000_000, ErrorMessage = "Front__CampaignsPerMinute must be 0 (no limit) or up to 1000000")]
    public int CampaignsPerMinute { get; set; } = 60;

    /// <summary>The shortest API key accepted: anything shorter is guessable.</summary>
    public const int MinApiKeyLength = 16;

    /// <summary>The list settings given both as one value and as indexed keys (<see cref="ReadListSettings"/>).</summary>
    private List<string> listsInBothForms = [];

    /// <summary><see cref="AllowedSenders"/> was set, though perhaps to nothing: then no sender is allowed, rather than any.</summary>
    private bool allowedSendersGiven;

    /// <summary>Reads each list setting given as one comma-separated value (<c>Front__ApiKeys=a,b</c>), which the binder drops.</summary>
    /// <remarks>Run after binding; <see cref="Validate"/> then refuses a list given in both forms, and an allowlist given empty.</remarks>
    public void ReadListSettings(IConfiguration configuration)
    {
        listsInBothForms = [];
        foreach (var (name, list) in new[] { (nameof(ApiKeys), ApiKeys), (nameof(AdminKeys), AdminKeys), (nameof(AllowedSenders), AllowedSenders) })
        {
            var setting = ListSettings.Apply(configuration, $"{Section}:{name}", list);
            if (setting.BothForms)
            {
                listsInBothForms.Add(name);
            }

            if (name == nameof(AllowedSenders))
            {
                allowedSendersGiven = setting.Given;
            }
        }
    }

    /// <summary>What the attributes cannot say: every key, the keys file and every allowed sender must be usable.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var name in listsInBothForms)
        {
            yield return new ValidationResult(ListSettings.BothFormsError($"{Section}__{name}"), [name]);
        }

        // Failing open here would let any sender through where the operator meant to restrict them.
        if (allowedSendersGiven && AllowedSenders.Count == 0)
        {
            yield return new ValidationResult("Front__AllowedSenders is set but names no sender: give addresses and domains " +
                "(news@example.com,@example.org, or Front__AllowedSenders__0, __1…), or leave it unset to allow any", [nameof(AllowedSenders)]);
        }

        foreach (var problem in KeyProblems(nameof(ApiKeys), ApiKeys, ApiKeysFile).Concat(KeyProblems(nameof(AdminKeys), AdminKeys, AdminKeysFile)))
        {
            yield return problem;
        }

        for (var i = 0; i < AllowedSenders.Count; i++)
        {
            if (!Access.AllowedSenders.IsValidEntry(AllowedSenders[i]))
            {
                yield return new ValidationResult($"Front__AllowedSenders__{i} must be an address (news@example.com) or a domain (@example.com)", [nameof(AllowedSenders)]);
            }
        }
    }

    /// <summary>Every ordinary key this Front accepts: those in the configuration and those in the keys file.</summary>
    public IReadOnlyList<string> AllApiKeys() =>
        [.. ApiKeys, .. string.IsNullOrEmpty(ApiKeysFile) ? [] : ReadKeysFile(ApiKeysFile)];

    /// <summary>Every admin key: those in the configuration and those in the admin keys file.</summary>
    public IReadOnlyList<string> AllAdminKeys() =>
        [.. AdminKeys, .. string.IsNullOrEmpty(AdminKeysFile) ? [] : ReadKeysFile(AdminKeysFile)];

    /// <summary>Each key of <paramref name="name"/> and its file that is unusable, naming the setting.</summary>
    private static IEnumerable<ValidationResult> KeyProblems(string name, List<string> keys, string? file)
    {
        for (var i = 0; i < keys.Count; i++)
        {
            if (keys[i] is not { } key || !IsUsableKey(key))
            {
                yield return new ValidationResult($"Front__{name}__{i} must be at least {MinApiKeyLength} printable ASCII characters without spaces", [name]);
            }
        }

        if (string.IsNullOrEmpty(file))
        {
            yield break;
        }

        string? problem;
        try
        {
            var read = ReadKeysFile(file);
            problem = read.Count == 0 ? "holds no key"
                : !read.All(IsUsableKey) ? $"has a key shorter than {MinApiKeyLength} characters or with spaces"
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot be read ({e.Message})";
        }

        if (problem is not null)
        {
            yield return new ValidationResult($"Front__{name}File {problem}: one key per line, # for comments", [$"{name}File"]);
        }
    }

    private static bool IsUsableKey(string key) => key.Length >= MinApiKeyLength && !key.Any(c => c is <= ' ' or > '~');

    private static List<string> ReadKeysFile(string path) =>
        [.. File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];
}
