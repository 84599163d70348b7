using System.Text;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Contracts.Suppressions;

namespace Bulk.Broker.Suppressions;

/// <summary>The fold of the suppressions stream: every address no campaign may mail, with why.</summary>
/// <remarks>
/// Addresses compare case-insensitively, as mailbox providers treat them. Applying an entry twice changes nothing.
///
/// The list is kept for ever and every process holds all of it, so it is stored compactly: a 16-byte row per address
/// (a 32-bit hash of the upper-cased address, the time, where its record starts), the record in one growing buffer
/// (a reason byte, the address as UTF-8, varints for the campaign, the note and the time's offset), and an
/// open-addressing table of row numbers at most three quarters full. Campaign ids repeat, and a relay's reply is kept
/// once as a template with the address taken out (<see cref="ReplyTemplates"/>), so thousands of bounces share it.
/// </remarks>
public sealed class SuppressionList
{
    private const int Free = -1;
    private const int Removed = -2;

    private readonly Lock entriesLock = new();
    private readonly List<string> strings = [];
    private readonly List<string> reasons = [];
    private ReplyTemplates notes = new();
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
                textBytes += rows[i].Removed ? 0 : RecordLength(rows[i]);
            }

            writer.Write((int)Math.Min(textBytes, int.MaxValue));
            for (var i = 0; i < rowCount; i++)
            {
                if (rows[i].Removed)
                {
                    continue;
                }

                var entry = ToSuppression(i);
                writer.Write(entry.Email);
                writer.Write(entry.Reason);
                writer.Write(entry.At.UtcTicks);
                writer.Write((short)entry.At.Offset.TotalMinutes);
                writer.Write(entry.CampaignId ?? "");
                Snapshots.WriteNullable(writer, entry.Detail);
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
                var detail = Snapshots.ReadNullable(reader);
                Add(email, reason, at, campaignId.Length == 0 ? null : campaignId, detail);
            }
        }
    }

    private void Clear()
    {
        strings.Clear();
        stringIds.Clear();
        reasons.Clear();
        notes = new ReplyTemplates();
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

        // The record in the buffer: reason, the address's length and bytes, campaign and note ids (0: none), offset.
        var emailBytes = Encoding.UTF8.GetByteCount(email);
        EnsureText(1 + 5 + emailBytes + 5 + 5 + 5);
        var textAt = textLength;
        text[textLength++] = (byte)ReasonId(reason);
        WriteVarint(emailBytes);
        textLength += Encoding.UTF8.GetBytes(email, text.AsSpan(textLength));
        WriteVarint(campaignId is null ? 0 : StringId(campaignId) + 1);
        WriteVarint(detail is null ? 0 : notes.Intern(email, detail) + 1);
        WriteVarint(ZigZag((int)at.Offset.TotalMinutes));
        rows[rowCount] = new Row { Hash = hash, TextAt = textAt, AtTicks = at.UtcTicks };
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

        rows[table[slot]].TextAt = ~rows[table[slot]].TextAt;
        table[slot] = Removed;
        liveCount--;
        pageOrder = null;
    }

    /// <summary>The slot holding <paramref name="email"/>'s row, or the slot where it would go (free or removed).</summary>
    private int FindSlot(string email, uint hash)
    {
        var mask = table.Length - 1;
        var reusable = -1;
        for (var slot = (int)(hash & (uint)mask); ; slot = (slot + 1) & mask)
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
        var (at, length) = EmailOf(row);
        Span<char> chars = length <= 512 ? stackalloc char[length] : new char[length];
        var written = Encoding.UTF8.GetChars(text.AsSpan(at, length), chars);
        return chars[..written].Equals(email, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Where a row's address lies in the buffer.</summary>
    private (int At, int Length) EmailOf(in Row row)
    {
        var at = row.TextAt + 1;
        var length = ReadVarint(ref at);
        return (at, length);
    }

    private Suppression ToSuppression(int index)
    {
        ref var row = ref rows[index];
        var at = row.TextAt;
        var reason = reasons[text[at++]];
        var emailLength = ReadVarint(ref at);
        var email = Encoding.UTF8.GetString(text, at, emailLength);
        at += emailLength;
        var campaign = ReadVarint(ref at);
        var note = ReadVarint(ref at);
        var offset = TimeSpan.FromMinutes(UnZigZag(ReadVarint(ref at)));
        return new Suppression(email, reason, new DateTimeOffset(row.AtTicks, TimeSpan.Zero).ToOffset(offset),
            campaign == 0 ? null : strings[campaign - 1], note == 0 ? null : notes.Reply(note - 1, email));
    }

    private string EmailText(in Row row)
    {
        var (at, length) = EmailOf(row);
        return Encoding.UTF8.GetString(text, at, length);
    }

    /// <summary>The bytes of a row's record: the reason, the address and four varints.</summary>
    private int RecordLength(in Row row)
    {
        var (at, length) = EmailOf(row);
        at += length;
        for (var field = 0; field < 3; field++)
        {
            ReadVarint(ref at);
        }

        return at - row.TextAt;
    }

    private void EnsureText(int bytes)
    {
        if (textLength + bytes > text.Length)
        {
            Array.Resize(ref text, Math.Max(textLength + bytes, text.Length + text.Length / 2));
        }
    }

    private void WriteVarint(int value)
    {
        var v = (uint)value;
        while (v >= 0x80)
        {
            text[textLength++] = (byte)(v | 0x80);
            v >>= 7;
        }

        text[textLength++] = (byte)v;
    }

    private int ReadVarint(ref int at)
    {
        uint value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = text[at++];
            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return (int)value;
            }
        }
    }

    private static int ZigZag(int value) => (value << 1) ^ (value >> 31);

    private static int UnZigZag(int value) => (int)((uint)value >> 1) ^ -(value & 1);

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

            var slot = (int)(rows[i].Hash & (uint)mask);
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
    private static uint Hash(string email)
    {
        var hash = 2166136261U;
        foreach (var c in email)
        {
            hash = (hash ^ char.ToUpperInvariant(c)) * 16777619U;
        }

        return hash;
    }

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
            : string.Compare(EmailText(rows[a]), EmailText(rows[b]), StringComparison.OrdinalIgnoreCase));
        return order;
    }

    /// <summary>One address on the list, in 16 bytes: the rest is its record in the shared buffer.</summary>
    private struct Row
    {
        public uint Hash;

        /// <summary>Where its record starts; negative (the complement) once the address was taken off the list.</summary>
        public int TextAt;

        public long AtTicks;

        public readonly bool Removed => TextAt < 0;
    }
}
