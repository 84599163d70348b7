using System.Text;
using System.Text.Encodings.Web;
using Bulk.Contracts;
using Bulk.Templates;
using Fluid;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Bulk.Front.Campaigns;

/// <summary>Checks a posted campaign field by field and turns it into the job the Workers deliver.</summary>
/// <remarks>
/// Templates are parsed and rendered once, for the first recipient, in the same <see cref="LiquidSandbox"/> and under the
/// same limits as on a Worker: a template that cannot render is refused here, next to its field, not found out per mail.
/// </remarks>
public sealed class CampaignValidator(IOptions<FrontOptions> options, LiquidSandbox sandbox)
{
    /// <summary>RFC 5322 keeps a line under 998 characters; a subject template longer than that is a mistake.</summary>
    public const int MaxSubjectLength = LiquidSandbox.MaxLineChars;

    /// <summary>Beyond this many bad recipients the answer says how many more there are instead of listing them.</summary>
    public const int MaxRecipientErrorsListed = 50;

    /// <summary>Stands in for a recipient's unsubscribe link in the trial rendering: as long as a real one.</summary>
    private const string TrialUnsubscribeUrl = "https://bulk.invalid/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    /// <summary>Custom headers a campaign may carry at most, each value at most one RFC 5322 line.</summary>
    public const int MaxHeaders = 50;

    /// <summary>Headers Bulk or the relay sets, and headers a receiver may read as a verdict of a server on the way
    /// (SPF, DKIM, where it was delivered to): a campaign may not give them.</summary>
    private static readonly HashSet<string> ReservedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "From", "To", "Cc", "Bcc", "Subject", "Message-ID", "Date", "Return-Path", "Sender", "MIME-Version",
        "Received", "DKIM-Signature", "List-Unsubscribe", "List-Unsubscribe-Post",
        "Received-SPF", "DomainKey-Signature", "Delivered-To", "X-Original-To",
    };

    /// <summary>Whole families of reserved headers: <c>ARC-*</c> and <c>Authentication-Results*</c> (RFC 8617's
    /// <c>ARC-Authentication-Results</c>, the <c>-Original</c> copies some relays keep) are trust verdicts too.</summary>
    private static readonly string[] ReservedPrefixes = ["Resent-", "Content-", "X-Bulk-", "ARC-", "Authentication-Results"];

    /// <summary>Custom headers whose value is a list of mailboxes a mail client shows by name, checked as <c>from</c> is.</summary>
    private static readonly HashSet<string> AddressHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Reply-To", "Mail-Reply-To", "Mail-Followup-To",
    };

    private static readonly ParserOptions AddressParser = new() { AllowAddressesWithoutDomain = false };

    /// <param name="Sender">The bare address of <c>from</c>, for the allowed-senders check.</param>
    public sealed record Result(DeliveryJob? Job, int DuplicatesDropped, Dictionary<string, string[]> Errors, string? Sender = null)
    {
        public bool IsValid => Errors.Count == 0;
    }

    public Result Validate(CampaignRequest request, string campaignId)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);

        var from = ValidateFrom(request.From, errors);
        var templates = new Dictionary<string, IFluidTemplate>(StringComparer.Ordinal);
        ValidateSubject(request.Subject, templates, errors);
        ValidateBodies(request.Text, request.Html, templates, errors);
        var headers = ValidateHeaders(request.Headers, errors);
        ValidateBounce(request.Bounce, request.Verp ?? false, errors);
        var (recipients, duplicates) = ValidateRecipients(request.Recipients, errors);

        if (errors.Count == 0)
        {
            RenderForFirstRecipient(templates, recipients[0], errors);
        }

        if (errors.Count > 0)
        {
            return new Result(null, 0, errors);
        }

        var template = new MessageTemplate(from!.ToString(), request.Subject!, Blank(request.Text), Blank(request.Html), headers,
            request.Bounce?.Trim(), request.Verp ?? false);
        return new Result(new DeliveryJob(DeliveryJob.CurrentVersion, campaignId, template, recipients, Total: recipients.Count), duplicates, errors,
            from!.Address);
    }

    private static MailboxAddress? ValidateFrom(string? from, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(from))
        {
            errors["from"] = ["The sender is required, e.g. \"News <news@example.com>\"."];
            return null;
        }

        if (HasLineBreakOrNul(from))
        {
            errors["from"] = ["The sender must not contain CR, LF or NUL."];
            return null;
        }

        if (!MailboxAddress.TryParse(AddressParser, from, out var mailbox) || !IsAddrSpec(mailbox.Address))
        {
            errors["from"] = [$"'{from}' is not a mailbox, e.g. \"News <news@example.com>\"."];
            return null;
        }

        if (DisplayNames.Refusal(mailbox) is { } refusal)
        {
            errors["from"] = [refusal];
            return null;
        }

        return mailbox;
    }

    /// <summary>With VERP the local part grows by "+", a 32-character campaign id, "-" and the recipient's index.</summary>
    public const int MaxVerpLocalPart = 64 - 1 - 32 - 1 - 8;

    private static void ValidateBounce(string? bounce, bool verp, Dictionary<string, string[]> errors)
    {
        if (bounce is null)
        {
            if (verp)
            {
                errors["verp"] = ["VERP needs a bounce address: give \"bounce\": \"bounces@example.com\"."];
            }

            return;
        }

        var address = bounce.Trim();
        if (!IsRecipientAddress(address))
        {
            errors["bounce"] = [$"'{bounce}' is not a bare email address, e.g. bounces@example.com."];
        }
        else if (verp && address.LastIndexOf('@') > MaxVerpLocalPart)
        {
            errors["bounce"] = [$"With VERP the bounce address's local part is at most {MaxVerpLocalPart} characters (an address's is 64 in all)."];
        }
    }

    /// <summary>Renders every template with the first recipient's data, as a Worker will: render errors show next to their field.</summary>
    private void RenderForFirstRecipient(Dictionary<string, IFluidTemplate> templates, JobRecipient first, Dictionary<string, string[]> errors)
    {
        var rendering = "";
        try
        {
            // Out of time once is tried again, as a Worker does: a cold Front must not refuse a campaign for its own JIT.
            LiquidSandbox.OnceMoreIfOutOfTime(() =>
            {
                var context = sandbox.NewContext(first.Data, first.Email, TrialUnsubscribeUrl);
                foreach (var (field, template) in templates)
                {
                    rendering = field;
                    _ = field == "subject"
                        ? sandbox.RenderLine(template, context, "the subject")
                        : sandbox.Render(template, context, field == "html" ? HtmlEncoder.Default : NullEncoder.Default);
                }

                return true;
            });
        }
        catch (TemplateRenderException e)
        {
            errors[rendering] = [$"The template cannot render for recipients[{first.Index}]: {e.Message}."];
        }
    }

    private void ValidateSubject(string? subject, Dictionary<string, IFluidTemplate> templates, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(subject))
        {
            errors["subject"] = ["The subject is required."];
        }
        else if (HasLineBreakOrNul(subject))
        {
            errors["subject"] = ["The subject must not contain CR, LF or NUL."];
        }
        else if (subject.Length > MaxSubjectLength)
        {
            errors["subject"] = [$"The subject is longer than {MaxSubjectLength} characters."];
        }
        else
        {
            CheckTemplate("subject", subject, templates, errors);
        }
    }

    private void ValidateBodies(string? text, string? html, Dictionary<string, IFluidTemplate> templates, Dictionary<string, string[]> errors)
    {
        if (Blank(text) is null && Blank(html) is null)
        {
            errors["text"] = ["A text or an html body is required (or both)."];
            return;
        }

        if (text is not null)
        {
            CheckBody("text", text, templates, errors);
        }

        if (html is not null)
        {
            CheckBody("html", html, templates, errors);
        }
    }

    private void CheckBody(string field, string source, Dictionary<string, IFluidTemplate> templates, Dictionary<string, string[]> errors)
    {
        var max = options.Value.MaxTemplateBytes;
        if (Encoding.UTF8.GetByteCount(source) > max)
        {
            errors[field] = [$"The {field} template is larger than {max} bytes (Front__MaxTemplateBytes)."];
        }
        else
        {
            CheckTemplate(field, source, templates, errors);
        }
    }

    /// <summary>Parses a template; it joins <paramref name="templates"/> (those a Worker will render) when it parses and is not blank.</summary>
    private void CheckTemplate(string field, string source, Dictionary<string, IFluidTemplate> templates, Dictionary<string, string[]> errors)
    {
        if (!sandbox.TryParse(source, out var template, out var error))
        {
            errors[field] = [error];
        }
        else if (Blank(source) is not null)
        {
            templates.Add(field, template);
        }
    }

    private static Dictionary<string, string>? ValidateHeaders(Dictionary<string, string?>? headers, Dictionary<string, string[]> errors)
    {
        if (headers is null || headers.Count == 0)
        {
            return null;
        }

        if (headers.Count > MaxHeaders)
        {
            errors["headers"] = [$"At most {MaxHeaders} custom headers; this campaign has {headers.Count}."];
            return null;
        }

        var valid = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            var key = $"headers.{name}";
            if (name.Length == 0 || name.Any(c => c is < '!' or > '~' or ':'))
            {
                errors[key] = ["A header name is printable ASCII without spaces or ':'."];
            }
            else if (ReservedHeaders.Contains(name) || ReservedPrefixes.Any(p => name.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
            {
                errors[key] = [$"'{name}' is set by Bulk and cannot be given."];
            }
            else if (value is null || HasLineBreakOrNul(value))
            {
                errors[key] = ["A header value is required and must not contain CR, LF or NUL."];
            }
            else if (name.Length + value.Length > MaxSubjectLength)
            {
                errors[key] = [$"A header is at most {MaxSubjectLength} characters, name included."];
            }
            else if (AddressHeaders.Contains(name) && DisplayNames.AddressListRefusal(value, AddressParser) is { } error)
            {
                errors[key] = [error];
            }
            else
            {
                valid[name] = value;
            }
        }

        return valid;
    }

    private (List<JobRecipient> Recipients, int Duplicates) ValidateRecipients(List<RecipientInput?>? input, Dictionary<string, string[]> errors)
    {
        var recipients = new List<JobRecipient>(input?.Count ?? 0);
        if (input is null || input.Count == 0)
        {
            errors["recipients"] = ["At least one recipient is required."];
            return (recipients, 0);
        }

        var max = options.Value.MaxRecipients;
        if (input.Count > max)
        {
            errors["recipients"] = [$"At most {max} recipients per campaign; this one has {input.Count}."];
            return (recipients, 0);
        }

        var seen = new HashSet<string>(input.Count, StringComparer.OrdinalIgnoreCase);
        long dataValues = 0;
        for (var i = 0; i < input.Count; i++)
        {
            var values = input[i]?.Data is { } data ? data.Values.Sum(v => 1 + Nested(v)) : 0;
            dataValues += values;
            if (values > options.Value.MaxDataValuesPerRecipient)
            {
                errors[$"recipients[{i}].data"] = [$"A recipient's data holds at most {options.Value.MaxDataValuesPerRecipient} values (Front__MaxDataValuesPerRecipient)."];
                return (recipients, 0);
            }
        }

        if (dataValues > options.Value.MaxDataValues)
        {
            errors["recipients"] = [$"The recipients' data hold at most {options.Value.MaxDataValues} values in all (Front__MaxDataValues)."];
            return (recipients, 0);
        }

        var invalid = 0;
        var duplicates = 0;
        for (var i = 0; i < input.Count; i++)
        {
            var email = input[i]?.Email?.Trim();
            if (email is null || !IsRecipientAddress(email))
            {
                if (++invalid <= MaxRecipientErrorsListed)
                {
                    errors[$"recipients[{i}].email"] = [email is null ? "An email address is required." : $"'{email}' is not an email address."];
                }

                continue;
            }

            if (!seen.Add(email))
            {
                duplicates++;
                continue;
            }

            recipients.Add(new JobRecipient(i, email, input[i]!.Data));
        }

        if (invalid > MaxRecipientErrorsListed)
        {
            errors["recipients"] = [$"{invalid} recipients are not email addresses; the first {MaxRecipientErrorsListed} are listed."];
        }

        return (recipients, duplicates);
    }

    /// <summary>The members and elements inside a data value, counted as the body's guard counts them.</summary>
    private static int Nested(System.Text.Json.JsonElement value) => value.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Object => value.EnumerateObject().Sum(p => 1 + Nested(p.Value)),
        System.Text.Json.JsonValueKind.Array => value.EnumerateArray().Sum(e => 1 + Nested(e)),
        _ => 0,
    };

    /// <summary>A bare address (no display name, no comments) MimeKit reads back unchanged.</summary>
    public static bool IsRecipientAddress(string email) =>
        !HasLineBreakOrNul(email)
        && MailboxAddress.TryParse(AddressParser, email, out var mailbox)
        && string.Equals(mailbox.Address, email, StringComparison.Ordinal)
        && IsAddrSpec(mailbox.Address);

    private static bool IsAddrSpec(string address)
    {
        var at = address.LastIndexOf('@');
        return at > 0 && at < address.Length - 1 && !address.Any(char.IsWhiteSpace);
    }

    private static bool HasLineBreakOrNul(string value) => value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0;

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
