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
/// (a reason byte; the address's local part as UTF-8 and its domain's id, since a few providers hold most addresses;
/// the campaign id inline, hex ids as bytes; the note's id and the time's offset as varints), and an open-addressing
/// table of row numbers at most three quarters full. A relay's reply is kept once as a template with the address taken
/// out (<see cref="ReplyTemplates"/>), so thousands of bounces share it.
/// </remarks>
public sealed class SuppressionList
{
    private const int Free = -1;
    private const int Removed = -2;

    private readonly Lock entriesLock = new();
    private readonly List<string> domains = [];
    private readonly Dictionary<string, int> domainIds = new(StringComparer.Ordinal);
    private readonly List<string> reasons = [];
    private ReplyTemplates notes = new();
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
    /// <remarks>The records as they are in memory, with the tables their ids point into: read back without parsing a string.</remarks>
    public void WriteTo(BinaryWriter writer)
    {
        lock (entriesLock)
        {
            WriteStrings(writer, reasons);
            WriteStrings(writer, domains);
            WriteStrings(writer, notes.Templates);
            writer.Write(liveCount);
            var textBytes = 0L;
            for (var i = 0; i < rowCount; i++)
            {
                textBytes += rows[i].Removed ? 0 : RecordLength(rows[i]);
            }

            writer.Write(textBytes);
            for (var i = 0; i < rowCount; i++)
            {
                if (!rows[i].Removed)
                {
                    writer.Write(rows[i].AtTicks);
                    var length = RecordLength(rows[i]);
                    writer.Write7BitEncodedInt(length);
                    writer.Write(text, rows[i].TextAt, length);
                }
            }
        }
    }

    /// <summary>What <see cref="WriteTo"/> would write now, written whenever asked: a copy of the rows and records taken
    /// under the list's lock (array copies, tens of milliseconds for a million addresses), so that a snapshot's writing
    /// and compressing (several times that) holds up no send's check.</summary>
    public Action<BinaryWriter> CopyForSnapshot()
    {
        var copy = new SuppressionList();
        lock (entriesLock)
        {
            copy.reasons.AddRange(reasons);
            copy.domains.AddRange(domains);
            copy.notes = new ReplyTemplates(notes.Templates);
            copy.rows = rows.AsSpan(0, rowCount).ToArray();
            copy.rowCount = rowCount;
            copy.liveCount = liveCount;
            copy.text = text.AsSpan(0, textLength).ToArray();
            copy.textLength = textLength;
        }

        // Only written out: the copy has no lookup table, and nothing else sees it.
        return copy.WriteTo;
    }

    /// <summary>Replaces the list with what <see cref="WriteTo"/> wrote.</summary>
    public void ReadFrom(BinaryReader reader)
    {
        lock (entriesLock)
        {
            Reset();
            reasons.AddRange(ReadStrings(reader));
            foreach (var domain in ReadStrings(reader))
            {
                DomainId(domain);
            }

            notes = new ReplyTemplates(ReadStrings(reader));
            var count = reader.ReadInt32();
            var textBytes = reader.ReadInt64();
            if (count < 0 || textBytes is < 0 or > int.MaxValue)
            {
                throw new InvalidDataException($"a suppression list of {count} addresses in {textBytes} bytes");
            }

            // Sized for what the snapshot holds: what comes after grows them by half when needed.
            rows = new Row[Math.Max(16, count)];
            text = new byte[Math.Max(256, textBytes)];
            table = NewTable(TableSizeFor(count));
            var mask = table.Length - 1;
            for (var i = 0; i < count; i++)
            {
                var at = reader.ReadInt64();
                var length = reader.Read7BitEncodedInt();
                EnsureText(length);
                reader.BaseStream.ReadExactly(text, textLength, length);
                var hash = Hash(Read(textLength));
                rows[rowCount] = new Row { Hash = hash, TextAt = textLength, AtTicks = at };
                textLength += length;
                // Every address of a snapshot is distinct: its row goes in the first free slot.
                var slot = (int)(hash & (uint)mask);
                while (table[slot] != Free)
                {
                    slot = (slot + 1) & mask;
                }

                table[slot] = rowCount++;
                tableUsed++;
                liveCount++;
            }
        }
    }

    private static void WriteStrings(BinaryWriter writer, IReadOnlyList<string> strings)
    {
        writer.Write(strings.Count);
        foreach (var value in strings)
        {
            writer.Write(value);
        }
    }

    private static List<string> ReadStrings(BinaryReader reader)
    {
        var count = reader.ReadInt32();
        var strings = new List<string>(Math.Min(count, 1 << 16));
        for (var i = 0; i < count; i++)
        {
            strings.Add(reader.ReadString());
        }

        return strings;
    }

    /// <summary>Empties the list.</summary>
    public void Clear()
    {
        lock (entriesLock)
        {
            Reset();
        }
    }

    private void Reset()
    {
        domains.Clear();
        domainIds.Clear();
        reasons.Clear();
        notes = new ReplyTemplates();
        rows = new Row[16];
        rowCount = 0;
        liveCount = 0;
        text = new byte[256];
        textLength = 0;
        table = NewTable(32);
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

        // The record in the buffer: the reason; the address's local part, then its domain's id (domains repeat: a few
        // mailbox providers hold most addresses; 0: no '@'); the campaign id inline (hex as bytes); the note's id
        // (0: none); the time's offset.
        var split = email.LastIndexOf('@');
        var local = split < 0 ? email : email[..split];
        var localBytes = Encoding.UTF8.GetByteCount(local);
        var campaignBytes = campaignId is null ? 0 : Encoding.UTF8.GetByteCount(campaignId);
        EnsureText(1 + 5 + localBytes + 5 + 1 + 5 + campaignBytes + 5 + 5);
        var textAt = textLength;
        text[textLength++] = (byte)ReasonId(reason);
        WriteVarint(localBytes);
        textLength += Encoding.UTF8.GetBytes(local, text.AsSpan(textLength));
        WriteVarint(split < 0 ? 0 : DomainId(email[(split + 1)..]) + 1);
        WriteCampaign(campaignId);
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

    private bool SameAddress(in Row row, string email) =>
        string.Equals(Read(row.TextAt).Email(this), email, StringComparison.OrdinalIgnoreCase);

    private Suppression ToSuppression(int index)
    {
        ref var row = ref rows[index];
        var record = Read(row.TextAt);
        var email = record.Email(this);
        return new Suppression(email, reasons[record.Reason],
            new DateTimeOffset(row.AtTicks, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(record.OffsetMinutes)),
            record.Campaign(this), record.Note == 0 ? null : notes.Reply(record.Note - 1, email));
    }

    private string EmailText(in Row row) => Read(row.TextAt).Email(this);

    /// <summary>A record in the buffer, read; its campaign id is made a string only when asked for.</summary>
    private readonly record struct Record(byte Reason, int LocalAt, int LocalLength, int Domain, int CampaignAt, int Note, int OffsetMinutes, int End)
    {
        public string? Campaign(SuppressionList list)
        {
            var at = CampaignAt;
            return list.ReadCampaign(ref at);
        }

        public string Email(SuppressionList list)
        {
            var local = Encoding.UTF8.GetString(list.text, LocalAt, LocalLength);
            return Domain == 0 ? local : $"{local}@{list.domains[Domain - 1]}";
        }
    }

    private Record Read(int at)
    {
        var reason = text[at++];
        var localLength = ReadVarint(ref at);
        var localAt = at;
        at += localLength;
        var domain = ReadVarint(ref at);
        var campaignAt = at;
        if (text[at++] != 0)
        {
            var campaignLength = ReadVarint(ref at);
            at += campaignLength;
        }

        var note = ReadVarint(ref at);
        var offset = UnZigZag(ReadVarint(ref at));
        return new Record(reason, localAt, localLength, domain, campaignAt, note, offset, at);
    }

    /// <summary>A campaign id: none (0), lowercase hex as its bytes (1), else UTF-8 (2).</summary>
    private void WriteCampaign(string? campaignId)
    {
        if (campaignId is null)
        {
            text[textLength++] = 0;
        }
        else if (campaignId.Length % 2 == 0 && campaignId.Length <= 2 * 255 && campaignId.All(c => char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c)))
        {
            text[textLength++] = 1;
            WriteVarint(campaignId.Length / 2);
            textLength += Convert.FromHexString(campaignId, text.AsSpan(textLength), out _, out var written) == System.Buffers.OperationStatus.Done
                ? written : throw new InvalidDataException("not hex");
        }
        else
        {
            text[textLength++] = 2;
            var length = Encoding.UTF8.GetByteCount(campaignId);
            WriteVarint(length);
            textLength += Encoding.UTF8.GetBytes(campaignId, text.AsSpan(textLength));
        }
    }

    private string? ReadCampaign(ref int at)
    {
        var kind = text[at++];
        if (kind == 0)
        {
            return null;
        }

        var length = ReadVarint(ref at);
        var id = kind == 1 ? Convert.ToHexStringLower(text, at, length) : Encoding.UTF8.GetString(text, at, length);
        at += length;
        return id;
    }

    /// <summary>The bytes of a row's record.</summary>
    private int RecordLength(in Row row) => Read(row.TextAt).End - row.TextAt;

    private int DomainId(string domain)
    {
        if (!domainIds.TryGetValue(domain, out var id))
        {
            id = domains.Count;
            domains.Add(domain);
            domainIds[domain] = id;
        }

        return id;
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
    private static uint Hash(string email) => Hash(2166136261U, email);

    private static uint Hash(uint hash, ReadOnlySpan<char> chars)
    {
        foreach (var c in chars)
        {
            hash = (hash ^ char.ToUpperInvariant(c)) * 16777619U;
        }

        return hash;
    }

    /// <summary>The hash of a record's address, as <see cref="Hash(string)"/> gives it, without making the string.</summary>
    private uint Hash(Record record)
    {
        Span<char> local = record.LocalLength <= 512 ? stackalloc char[record.LocalLength] : new char[record.LocalLength];
        var hash = Hash(2166136261U, local[..Encoding.UTF8.GetChars(text.AsSpan(record.LocalAt, record.LocalLength), local)]);
        return record.Domain == 0 ? hash : Hash(Hash(hash, "@"), domains[record.Domain - 1]);
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
