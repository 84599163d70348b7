using System.ComponentModel.DataAnnotations;

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

    /// <summary>Addresses (<c>news@example.com</c>) and domains (<c>@example.com</c>) a campaign may be sent from; empty allows any.</summary>
    public List<string> AllowedSenders { get; set; } = [];

    /// <summary>Campaigns one API key (or, without keys, one client address) may post per minute, in bursts up to the same number; 0 for no limit.</summary>
    [Range(0, 1_000_000, ErrorMessage = "Front__CampaignsPerMinute must be 0 (no limit) or up to 1000000")]
    public int CampaignsPerMinute { get; set; } = 60;

    /// <summary>The shortest API key accepted: anything shorter is guessable.</summary>
    public const int MinApiKeyLength = 16;

    /// <summary>What the attributes cannot say: every key, the keys file and every allowed sender must be usable.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        for (var i = 0; i < ApiKeys.Count; i++)
        {
            if (ApiKeys[i] is not { } key || key.Length < MinApiKeyLength || key.Any(c => c is <= ' ' or > '~'))
            {
                yield return new ValidationResult($"Front__ApiKeys__{i} must be at least {MinApiKeyLength} printable ASCII characters without spaces", [nameof(ApiKeys)]);
            }
        }

        if (!string.IsNullOrEmpty(ApiKeysFile))
        {
            string? problem;
            try
            {
                var keys = ReadKeysFile(ApiKeysFile);
                problem = keys.Count == 0 ? "holds no key"
                    : keys.Any(k => k.Length < MinApiKeyLength || k.Any(c => c is <= ' ' or > '~')) ? $"has a key shorter than {MinApiKeyLength} characters or with spaces"
                    : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problem = $"cannot be read ({e.Message})";
            }

            if (problem is not null)
            {
                yield return new ValidationResult($"Front__ApiKeysFile {problem}: one key per line, # for comments", [nameof(ApiKeysFile)]);
            }
        }

        for (var i = 0; i < AllowedSenders.Count; i++)
        {
            if (!Access.AllowedSenders.IsValidEntry(AllowedSenders[i]))
            {
                yield return new ValidationResult($"Front__AllowedSenders__{i} must be an address (news@example.com) or a domain (@example.com)", [nameof(AllowedSenders)]);
            }
        }
    }

    /// <summary>Every key this Front accepts: those in the configuration and those in the keys file.</summary>
    public IReadOnlyList<string> AllApiKeys() =>
        [.. ApiKeys, .. string.IsNullOrEmpty(ApiKeysFile) ? [] : ReadKeysFile(ApiKeysFile)];

    private static List<string> ReadKeysFile(string path) =>
        [.. File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];
}
