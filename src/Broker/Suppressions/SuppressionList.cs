using Bulk.Broker.Streams;
using Bulk.Contracts.Suppressions;

namespace Bulk.Broker.Suppressions;

/// <summary>The fold of the suppressions stream: every address no campaign may mail, with why.</summary>
/// <remarks>Addresses compare case-insensitively, as mailbox providers treat them. Applying an entry twice changes nothing.</remarks>
public sealed class SuppressionList
{
    private readonly Lock entriesLock = new();
    private readonly Dictionary<string, Suppression> entries = new(StringComparer.OrdinalIgnoreCase);

    public void Apply(SuppressionEvent e)
    {
        lock (entriesLock)
        {
            switch (e.Type)
            {
                case SuppressionType.Suppressed:
                    foreach (var email in Emails(e))
                    {
                        // The first reason stays: an unsubscribe is not turned into a bounce by a later campaign.
                        entries.TryAdd(email, new Suppression(email, e.Reason ?? SuppressionReasons.Operator, e.At, e.CampaignId, e.Detail));
                    }

                    break;
                case SuppressionType.Unsuppressed:
                    foreach (var email in Emails(e))
                    {
                        entries.Remove(email);
                    }

                    break;
            }
        }
    }

    private static IEnumerable<string> Emails(SuppressionEvent e) => e.MoreEmails is { } more ? [e.Email, .. more] : [e.Email];

    public Suppression? Find(string email)
    {
        lock (entriesLock)
        {
            return entries.GetValueOrDefault(email);
        }
    }

    /// <summary>A page of the list, most recent first, with how many there are in all.</summary>
    public (IReadOnlyList<Suppression> Page, int Count) Page(int offset, int limit)
    {
        lock (entriesLock)
        {
            return ([.. entries.Values.OrderByDescending(s => s.At).ThenBy(s => s.Email, StringComparer.OrdinalIgnoreCase).Skip(offset).Take(limit)], entries.Count);
        }
    }
}
