using System.Text;
using Bulk.Contracts.Outcomes;

namespace Bulk.Broker.Outcomes;

/// <summary>The relays' replies of failed recipients, each kept once with the recipient's address taken out.</summary>
/// <remarks>A relay's refusal usually names the address ("550 5.1.1 &lt;a@example.org&gt;: User unknown"), so thousands of
/// failures share a handful of replies once the address is replaced by a placeholder.</remarks>
internal sealed class ReplyTemplates
{
    private const char Placeholder = '\u0001';

    private readonly List<string> templates = [];
    private readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);

    public ReplyTemplates()
    {
    }

    /// <summary>Templates as <see cref="Templates"/> gave them, in the same order, so that ids kept elsewhere still hold.</summary>
    public ReplyTemplates(IEnumerable<string> saved)
    {
        foreach (var template in saved)
        {
            ids.TryAdd(template, templates.Count);
            templates.Add(template);
        }
    }

    public IReadOnlyList<string> Templates => templates;

    public int Intern(string email, string reply)
    {
        // A reply that holds the placeholder character itself would read back wrong: it is a control character no
        // relay has a reason to send, so it is replaced.
        var template = reply.Replace(Placeholder, '\uFFFD');
        if (email.Length > 0)
        {
            template = template.Replace(email, Placeholder.ToString(), StringComparison.Ordinal);
        }

        if (!ids.TryGetValue(template, out var id))
        {
            id = templates.Count;
            templates.Add(template);
            ids[template] = id;
        }

        return id;
    }

    public string Reply(int id, string email) => templates[id].Replace(Placeholder.ToString(), email, StringComparison.Ordinal);
}

/// <summary>A campaign's failed recipients, compact: a 16-byte row each, the address as UTF-8 in one buffer, the reply
/// as a shared template (<see cref="ReplyTemplates"/>).</summary>
internal sealed class FailureList
{
    private Row[] rows = [];
    private int used;
    private byte[] text = [];
    private int textLength;
    private bool inOrder = true;

    public int Count { get; private set; }

    public void Add(FailedRecipient failure, ReplyTemplates replies)
    {
        if (used == rows.Length)
        {
            Array.Resize(ref rows, Math.Max(4, used + used / 2));
        }

        var length = Encoding.UTF8.GetByteCount(failure.Email);
        if (textLength + length > text.Length)
        {
            Array.Resize(ref text, Math.Max(textLength + length, Math.Max(64, text.Length + text.Length / 2)));
        }

        Encoding.UTF8.GetBytes(failure.Email, text.AsSpan(textLength));
        inOrder &= used == 0 || rows[used - 1].Index < failure.Index;
        rows[used++] = new Row
        {
            Index = failure.Index,
            EmailAt = textLength,
            EmailLength = length,
            Reply = replies.Intern(failure.Email, failure.Reply),
            DeadLettered = failure.DeadLettered,
        };
        textLength += length;
        Count++;
    }

    /// <summary>Takes a recipient off the list (its dead letter was replayed); false when it was not on it.</summary>
    public bool Remove(int index)
    {
        for (var i = 0; i < used; i++)
        {
            if (rows[i].Index == index && !rows[i].Removed)
            {
                rows[i].Removed = true;
                Count--;
                return true;
            }
        }

        return false;
    }

    /// <summary>The failures in recipient order.</summary>
    public IEnumerable<FailedRecipient> InOrder(ReplyTemplates replies)
    {
        if (!inOrder)
        {
            Array.Sort(rows, 0, used, Comparer<Row>.Create((a, b) => a.Index.CompareTo(b.Index)));
            inOrder = true;
        }

        for (var i = 0; i < used; i++)
        {
            if (!rows[i].Removed)
            {
                var email = Encoding.UTF8.GetString(text, rows[i].EmailAt, rows[i].EmailLength);
                yield return new FailedRecipient(rows[i].Index, email, replies.Reply(rows[i].Reply, email), rows[i].DeadLettered);
            }
        }
    }

    private struct Row
    {
        public int Index;
        public int EmailAt;
        public int EmailLength;
        public int Reply;
        public bool DeadLettered;
        public bool Removed;
    }
}
