using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Suppressions;

/// <summary>Unsubscribe links (<c>Unsubscribe__Secret</c>, <c>Unsubscribe__BaseUrl</c>, <c>Unsubscribe__Mailto</c>).</summary>
/// <remarks>
/// The Worker signs a token per recipient with the secret; the Front checks it when the link is used. Both must be
/// given the same secret. <see cref="BaseUrl"/> is where recipients reach the Front's <c>/unsubscribe/{token}</c>.
/// </remarks>
public sealed class UnsubscribeOptions : IValidatableObject
{
    public const string Section = "Unsubscribe";

    public const int MinSecretLength = 32;

    private const string SecretRule =
        "Unsubscribe__Secret is required: at least 32 characters, the same for the Front and every Worker (it signs unsubscribe links)";

    [Required(ErrorMessage = SecretRule)]
    [MinLength(MinSecretLength, ErrorMessage = SecretRule)]
    public string? Secret { get; set; }

    /// <summary>The Front as recipients reach it, e.g. https://mail.example.com; required by Workers (see <see cref="LinksInMailValidator"/>).</summary>
    public string? BaseUrl { get; set; }

    /// <summary>A mailbox for mail-client unsubscribes (the mailto: half of List-Unsubscribe); optional.</summary>
    public string? Mailto { get; set; }

    /// <summary>What the attributes cannot say: the address and mailbox, when given, must be usable in a header.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrEmpty(BaseUrl)
            && (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.Query.Length > 0))
        {
            yield return new ValidationResult("Unsubscribe__BaseUrl must be an https:// (or http://) address without a query, e.g. https://mail.example.com", [nameof(BaseUrl)]);
        }

        if (!string.IsNullOrEmpty(Mailto) && (Mailto.Count(c => c == '@') != 1 || Mailto.Any(c => c is <= ' ' or > '~' or '<' or '>' or '?' or ',')))
        {
            yield return new ValidationResult("Unsubscribe__Mailto must be a plain address, e.g. unsubscribe@example.com", [nameof(Mailto)]);
        }
    }

    /// <summary>The rule of a process that puts unsubscribe links in mail (a Worker): it needs <see cref="BaseUrl"/>.</summary>
    /// <remarks>The Front only checks tokens and needs none; a Worker registers this beside the rules every process has.</remarks>
    public sealed class LinksInMailValidator : IValidateOptions<UnsubscribeOptions>
    {
        public ValidateOptionsResult Validate(string? name, UnsubscribeOptions options) => string.IsNullOrEmpty(options.BaseUrl)
            ? ValidateOptionsResult.Fail("Unsubscribe__BaseUrl is required: where recipients reach the Front's unsubscribe links, e.g. https://mail.example.com")
            : ValidateOptionsResult.Success;
    }
}
