using System.Text;
using Bulk.Contracts.Suppressions;

namespace Bulk.Broker.Suppressions;

/// <summary>The fold of the suppressions stream: every address no campaign may mail, with why.</summary>
/// <remarks>
/// Addresses compare case-insensitively, as mailbox providers treat them. Applying an entry twice changes nothing.
///
/// The list is kept for ever and every process holds all of it, so it is stored compactly: an address and its note
/// as UTF-8 bytes in one growing buffer, the rest in a fixed-size row, and an open-addressing table of row numbers
/// keyed by a 64-bit hash of the upper-cased address (a 32-byte row, the address's bytes and about 8 bytes of table per
/// entry, against some 200 bytes as objects). Campaign ids and reasons repeat, so each is stored once.
/// </remarks>
public sealed class SuppressionList
{
    private const int Free = -1;
    private const int Removed = -2;

    /// <summary>The longest note kept, in characters (at most 4 bytes each in UTF-8, within a row's 15-bit length).</summary>
    private const int MaxDetail = 4000;

    private readonly Lock entriesLock = new();
    private readonly List<string> strings = [];
    private readonly List<string> reasons = [];
    private readonly Dictionary<string, int> stringIds = new(StringComparer.Ordinal);
    private Row[] rows = new Row[16];
    private int rowCount;
    private int liveCount;
    private byte[] text = new byte[256];
    private int textLength;
    private int[] table = NewTable(32);
    private int tableUsed;
    private int[]? pageOrder;

    /// <summary>How many addresses are on the list.</summary>
    public int Count
    {
        get
        {
            lock (entriesLock)
            {
                return liveCount;
            }
        }
    }

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
                        Add(email, e.Reason ?? SuppressionReasons.Operator, e.At, e.CampaignId, e.Detail);
                    }

                    break;
                case SuppressionType.Unsuppressed:
                    foreach (var email in Emails(e))
                    {
                        Remove(email);
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
            var slot = FindSlot(email, Hash(email));
            return table[slot] >= 0 ? ToSuppression(table[slot]) : null;
        }
    }

    /// <summary>A page of the list, most recent first, with how many there are in all.</summary>
    public (IReadOnlyList<Suppression> Page, int Count) Page(int offset, int limit)
    {
        lock (entriesLock)
        {
            pageOrder ??= SortedForPages();
            return ([.. pageOrder.Skip(offset).Take(limit).Select(ToSuppression)], liveCount);
        }
    }

    /// <summary>Writes every address on the list, for a snapshot.</summary>
    public void WriteTo(BinaryWriter writer)
    {
        lock (entriesLock)
        {
            writer.Write(liveCount);
            var textBytes = 0L;
            for (var i = 0; i < rowCount; i++)
            {
                textBytes += rows[i].Removed ? 0 : rows[i].EmailLength + Math.Max(0, (int)rows[i].DetailLength);
            }

            writer.Write((int)Math.Min(textBytes, int.MaxValue));
            for (var i = 0; i < rowCount; i++)
            {
                ref var row = ref rows[i];
                if (row.Removed)
                {
                    continue;
                }

                writer.Write(Text(row.EmailAt, row.EmailLength));
                writer.Write(reasons[row.Reason]);
                writer.Write(row.AtTicks);
                writer.Write(row.OffsetMinutes);
                writer.Write(row.CampaignId < 0 ? "" : strings[row.CampaignId]);
                writer.Write(row.DetailLength >= 0);
                if (row.DetailLength >= 0)
                {
                    writer.Write(Text(row.EmailAt + row.EmailLength, row.DetailLength));
                }
            }
        }
    }

    /// <summary>Replaces the list with what <see cref="WriteTo"/> wrote.</summary>
    public void ReadFrom(BinaryReader reader)
    {
        lock (entriesLock)
        {
            Clear();
            var count = reader.ReadInt32();
            var textBytes = reader.ReadInt32();
            rows = new Row[Math.Max(16, count + count / 8)];
            text = new byte[Math.Max(256, textBytes)];
            table = NewTable(TableSizeFor(count));
            for (var i = 0; i < count; i++)
            {
                var email = reader.ReadString();
                var reason = reader.ReadString();
                var at = new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(reader.ReadInt16()));
                var campaignId = reader.ReadString();
                string? detail = reader.ReadBoolean() ? reader.ReadString() : null;
                Add(email, reason, at, campaignId.Length == 0 ? null : campaignId, detail);
            }
        }
    }

    private void Clear()
    {
        strings.Clear();
        stringIds.Clear();
        reasons.Clear();
        rowCount = 0;
        liveCount = 0;
        textLength = 0;
        tableUsed = 0;
        pageOrder = null;
    }

    private void Add(string email, string reason, DateTimeOffset at, string? campaignId, string? detail)
    {
        var hash = Hash(email);
        var slot = FindSlot(email, hash);
        if (table[slot] >= 0)
        {
            return;
        }

        if (rowCount == rows.Length)
        {
            Array.Resize(ref rows, rows.Length + rows.Length / 2);
        }

        if (Encoding.UTF8.GetByteCount(email) > ushort.MaxValue)
        {
            throw new InvalidDataException($"an address of {email.Length} characters cannot be suppressed");
        }

        if (detail is { Length: > MaxDetail })
        {
            detail = detail[..MaxDetail] + "…"; // a relay's reply of any length; the note keeps its start
        }

        // The note follows the address in the buffer.
        var (emailAt, emailLength) = AppendText(email);
        var detailLength = detail is null ? -1 : AppendText(detail).Length;
        rows[rowCount] = new Row
        {
            Hash = hash,
            AtTicks = at.UtcTicks,
            EmailAt = emailAt,
            EmailLength = (ushort)emailLength,
            DetailLength = (short)detailLength,
            CampaignId = campaignId is null ? -1 : StringId(campaignId),
            Reason = (byte)ReasonId(reason),
            OffsetMinutes = (short)at.Offset.TotalMinutes,
        };

        if (table[slot] == Free)
        {
            tableUsed++;
        }

        table[slot] = rowCount++;
        liveCount++;
        pageOrder = null;
        if (tableUsed * 4 > table.Length * 3)
        {
            Rehash(TableSizeFor(liveCount));
        }
    }

    private void Remove(string email)
    {
        var slot = FindSlot(email, Hash(email));
        if (table[slot] < 0)
        {
            return;
        }

        rows[table[slot]].Removed = true;
        table[slot] = Removed;
        liveCount--;
        pageOrder = null;
    }

    /// <summary>The slot holding <paramref name="email"/>'s row, or the slot where it would go (free or removed).</summary>
    private int FindSlot(string email, ulong hash)
    {
        var mask = table.Length - 1;
        var reusable = -1;
        for (var slot = (int)(hash & (ulong)mask); ; slot = (slot + 1) & mask)
        {
            var at = table[slot];
            if (at == Free)
            {
                return reusable >= 0 ? reusable : slot;
            }

            if (at == Removed)
            {
                reusable = reusable >= 0 ? reusable : slot;
            }
            else if (rows[at].Hash == hash && SameAddress(rows[at], email))
            {
                return slot;
            }
        }
    }

    private bool SameAddress(in Row row, string email)
    {
        Span<char> chars = row.EmailLength <= 512 ? stackalloc char[row.EmailLength] : new char[row.EmailLength];
        var written = Encoding.UTF8.GetChars(text.AsSpan(row.EmailAt, row.EmailLength), chars);
        return chars[..written].Equals(email, StringComparison.OrdinalIgnoreCase);
    }

    private void Rehash(int size)
    {
        table = NewTable(size);
        tableUsed = 0;
        var mask = size - 1;
        for (var i = 0; i < rowCount; i++)
        {
            if (rows[i].Removed)
            {
                continue;
            }

            var slot = (int)(rows[i].Hash & (ulong)mask);
            while (table[slot] != Free)
            {
                slot = (slot + 1) & mask;
            }

            table[slot] = i;
            tableUsed++;
        }
    }

    private static int TableSizeFor(int entries)
    {
        var size = 32;
        while (size < entries * 2)
        {
            size *= 2;
        }

        return size;
    }

    private static int[] NewTable(int size)
    {
        var table = new int[size];
        Array.Fill(table, Free);
        return table;
    }

    /// <summary>FNV-1a over the upper-cased characters, as <see cref="StringComparison.OrdinalIgnoreCase"/> compares them.</summary>
    private static ulong Hash(string email)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in email)
        {
            hash = (hash ^ char.ToUpperInvariant(c)) * 1099511628211UL;
        }

        return hash;
    }

    private (int At, int Length) AppendText(string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        if (textLength + length > text.Length)
        {
            Array.Resize(ref text, Math.Max(textLength + length, text.Length + text.Length / 2));
        }

        Encoding.UTF8.GetBytes(value, text.AsSpan(textLength));
        textLength += length;
        return (textLength - length, length);
    }

    private string Text(int at, int length) => Encoding.UTF8.GetString(text, at, length);

    /// <summary>Reasons are few (unsubscribed, hard_bounce, operator): one byte each.</summary>
    private int ReasonId(string reason)
    {
        var id = reasons.IndexOf(reason);
        if (id < 0)
        {
            if (reasons.Count == byte.MaxValue)
            {
                throw new InvalidDataException($"more than {byte.MaxValue} distinct suppression reasons");
            }

            reasons.Add(reason);
            id = reasons.Count - 1;
        }

        return id;
    }

    private int StringId(string value)
    {
        if (!stringIds.TryGetValue(value, out var id))
        {
            id = strings.Count;
            strings.Add(value);
            stringIds[value] = id;
        }

        return id;
    }

    private Suppression ToSuppression(int at)
    {
        ref var row = ref rows[at];
        return new Suppression(Text(row.EmailAt, row.EmailLength), reasons[row.Reason],
            new DateTimeOffset(row.AtTicks, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(row.OffsetMinutes)),
            row.CampaignId < 0 ? null : strings[row.CampaignId], row.DetailLength < 0 ? null : Text(row.EmailAt + row.EmailLength, row.DetailLength));
    }

    private int[] SortedForPages()
    {
        var order = new int[liveCount];
        var n = 0;
        for (var i = 0; i < rowCount; i++)
        {
            if (!rows[i].Removed)
            {
                order[n++] = i;
            }
        }

        Array.Sort(order, (a, b) => rows[a].AtTicks != rows[b].AtTicks
            ? rows[b].AtTicks.CompareTo(rows[a].AtTicks)
            : string.Compare(Text(rows[a].EmailAt, rows[a].EmailLength), Text(rows[b].EmailAt, rows[b].EmailLength), StringComparison.OrdinalIgnoreCase));
        return order;
    }

    /// <summary>One address on the list, in 32 bytes: its text (the address, then the note) lives in the shared buffer.</summary>
    private struct Row
    {
        public ulong Hash;
        public long AtTicks;
        public int EmailAt;
        public int CampaignId;
        public ushort EmailLength;

        /// <summary>-1: no note.</summary>
        public short DetailLength;

        public short OffsetMinutes;
        public byte Reason;
        public bool Removed;
    }
}
