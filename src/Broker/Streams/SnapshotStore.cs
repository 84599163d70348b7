using System.IO.Compression;
using System.Text;
using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Bulk.Broker.Streams;

/// <summary>What a snapshot holds besides the fold: the offset of the first stream entry it does not cover.</summary>
public sealed record LoadedSnapshot(long Offset, int Bytes, int Parts);

/// <summary>The snapshots of one stream's fold, kept in a stream of their own (<c>&lt;stream&gt;.snapshots</c>).</summary>
/// <remarks>
/// A snapshot is the fold written with a <see cref="BinaryWriter"/>, Brotli-compressed and cut into parts of at most
/// <see cref="PartBytes"/> (256 KiB, within the broker's message size limit), published one after the other by the one writer holding
/// the lock; every part carries the snapshot's id, its number, how many there are and the offset covered. To find the
/// latest, a reader appends a marker (so the stream is not empty and its end is known), reads the last chunk of the
/// stream, and steps back from there to the last part of a snapshot, whose earlier parts it then reads by their id; an
/// incomplete snapshot (its writer died) sends the reader to the entries before. Any complete snapshot will do: the tail
/// from its offset brings the fold up to date. Every start appends a marker, so a long idle spell leaves many of them
/// after the last snapshot: the reader steps over them in windows that double (headers only), back to the stream's
/// first entry if need be, so no number of starts puts a snapshot out of reach.
/// </remarks>
public sealed class SnapshotStore(BrokerConnections connections, string stream, IDictionary<string, object?> arguments, int maxMessageBytes)
{
    private const string IdHeader = "bulk-snapshot";
    private const string PartHeader = "bulk-snapshot-part";
    private const string PartsHeader = "bulk-snapshot-parts";
    private const string OffsetHeader = "bulk-snapshot-offset";
    private const string MarkerHeader = "bulk-snapshot-marker";
    private static readonly byte[] Magic = "BULKSNAP1"u8.ToArray();

    /// <summary>How long a reader waits for an entry it knows is there.</summary>
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);

    /// <summary>The first and the largest window of entries a reader steps back over at once, looking for a snapshot's part.</summary>
    private const int FirstWindow = 16;
    private const int MaxWindow = 4096;

    public string Stream => stream;

    // Small parts: the client holds a few in flight, and keeps pooled buffers of that size for the process's life.
    private int PartBytes => Math.Min(256 * 1024, maxMessageBytes / 2);

    /// <summary>Serializes and compresses a fold, as <see cref="WriteAsync"/> stores it.</summary>
    /// <param name="streamBytes">The bytes of stream entries the fold has taken in (for the retention warning).</param>
    /// <param name="write">Writes the fold: a copy of it taken beforehand, so that no lock is held meanwhile (see
    /// <see cref="EventStream{TEvent}"/>'s CaptureSnapshot).</param>
    public static byte[] Encode(long streamBytes, Action<BinaryWriter> write)
    {
        using var buffer = new MemoryStream();
        buffer.Write(Magic);
        // Buffered: a BinaryWriter writes field by field, and Brotli given a few bytes at a time is slow and large.
        using (var brotli = new BrotliStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var buffered = new BufferedStream(brotli, 1 << 16))
        using (var writer = new BinaryWriter(buffered, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(streamBytes);
            write(writer);
        }

        return buffer.ToArray();
    }

    /// <summary>Decompresses and reads what <see cref="Encode"/> wrote; returns the bytes of stream it covered.</summary>
    public static long Decode(byte[] data, Action<BinaryReader> read)
    {
        if (data.Length < Magic.Length || !data.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a snapshot of this format");
        }

        using var brotli = new BrotliStream(new MemoryStream(data, Magic.Length, data.Length - Magic.Length), CompressionMode.Decompress);
        using var buffered = new BufferedStream(brotli, 1 << 16);
        using var reader = new BinaryReader(buffered, Encoding.UTF8);
        var streamBytes = reader.ReadInt64();
        read(reader);
        return streamBytes;
    }

    /// <summary>Appends one snapshot, covering the stream's entries before <paramref name="offset"/>; returns its parts.</summary>
    public async Task<int> WriteAsync(byte[] data, long offset, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var parts = Math.Max(1, (data.Length + PartBytes - 1) / PartBytes);
        await using var channel = await OpenAsync(ConnectionRole.Publish, BrokerConnections.ConfirmedChannel, cancellationToken);
        for (var part = 0; part < parts; part++)
        {
            var properties = new BasicProperties
            {
                DeliveryMode = DeliveryModes.Persistent,
                Headers = new Dictionary<string, object?>
                {
                    [IdHeader] = id, [PartHeader] = part, [PartsHeader] = parts, [OffsetHeader] = offset,
                },
            };
            var start = part * PartBytes;
            await channel.BasicPublishAsync("", stream, mandatory: true, properties,
                data.AsMemory(start, Math.Min(PartBytes, data.Length - start)), cancellationToken);
        }

        return parts;
    }

    /// <summary>The latest complete snapshot, or null when the stream holds none.</summary>
    /// <exception cref="IOException">The broker failed the lookup (or an entry known to be there did not come): that
    /// says nothing of whether a snapshot exists.</exception>
    public async Task<(byte[] Data, LoadedSnapshot Snapshot)?> ReadLatestAsync(CancellationToken cancellationToken)
    {
        await foreach (var found in NewestFirstAsync(cancellationToken))
        {
            return found;
        }

        return null;
    }

    /// <summary>The stream's complete snapshots, newest first, each read when asked for: a caller that cannot use one
    /// (another version's format) goes on to the one before. Ends when the stream holds no more.</summary>
    /// <remarks>Offsets are not contiguous: the broker gives a few to entries of its own that no consumer sees (one
    /// where each segment of the stream begins), so parts are found by their snapshot's id, not counted out.</remarks>
    /// <exception cref="IOException">The broker failed the lookup (or an entry known to be there did not come): that
    /// says nothing of whether a snapshot exists, and the caller must not take it as "none".</exception>
    public async IAsyncEnumerable<(byte[] Data, LoadedSnapshot Snapshot)> NewestFirstAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await AppendMarkerAsync(cancellationToken);
        await using var channel = await OpenAsync(ConnectionRole.Consume, null, cancellationToken);
        await channel.BasicQosAsync(0, 4, global: false, cancellationToken);
        var last = await EntryAtAsync(channel, "last", cancellationToken);
        var first = (await EntryAtAsync(channel, "first", cancellationToken)).Offset;
        var passed = new HashSet<string>(StringComparer.Ordinal);
        // From just before the last chunk's first entry, so that an entry after every range read is known to be there.
        // Every turn moves strictly back through the stream, so the walk ends at its first entry at the latest.
        for (var at = last.Offset - 1; at >= first;)
        {
            if (await LastPartAtOrBeforeAsync(channel, first, at, passed, cancellationToken) is not { } entry
                || PartOf(entry) is not var (id, part, parts, covered))
            {
                yield break;
            }

            passed.Add(id);
            var found = part == parts - 1 ? await PartsOfAsync(channel, first, entry, cancellationToken) : null;
            if (found is not null)
            {
                var data = new byte[found.Sum(e => e.Body.Length)];
                var into = 0;
                foreach (var e in found)
                {
                    e.Body.CopyTo(data, into);
                    into += e.Body.Length;
                }

                at = found[0].Offset - 1;
                found.Clear();
                yield return (data, new LoadedSnapshot(covered, data.Length, parts));
            }
            else
            {
                // Incomplete (its writer died, or is writing it now): the one before will do.
                at = entry.Offset - 1;
            }
        }
    }

    /// <summary>The last part at or before <paramref name="at"/> of a snapshot not in <paramref name="passed"/>, or null
    /// when the stream (what its retention kept of it) holds none there.</summary>
    private async Task<Entry?> LastPartAtOrBeforeAsync(IChannel channel, long first, long at, HashSet<string> passed, CancellationToken cancellationToken)
    {
        for (var window = FirstWindow; at >= first; window = Math.Min(window * 2, MaxWindow))
        {
            var from = Math.Max(first, at - window + 1);
            var read = await ReadRangeAsync(channel, from, at, _ => false, cancellationToken);
            if (read.LastOrDefault(e => PartOf(e) is var (id, _, _, _) && !passed.Contains(id)) is { } part)
            {
                return part;
            }

            at = from - 1;
        }

        return null;
    }

    /// <summary>The parts of the snapshot whose last part is <paramref name="last"/>, in order with their bodies; null
    /// when some are missing (its writer died half-way, or retention dropped its first ones).</summary>
    private async Task<List<Entry>?> PartsOfAsync(IChannel channel, long first, Entry last, CancellationToken cancellationToken)
    {
        var (id, part, _, _) = PartOf(last)!.Value;
        bool Mine(Entry e) => PartOf(e) is var (eid, _, _, _) && eid == id;
        // Usually no offset between them is the broker's own; a few are where the stream's segments begin.
        for (var slack = 4L + part / 64; ; slack *= 4)
        {
            var from = Math.Max(first, last.Offset - part - slack);
            var found = (await ReadRangeAsync(channel, from, last.Offset, Mine, cancellationToken)).Where(Mine).ToList();
            if (found.Count > 0 && PartOf(found[0]) is (_, 0, _, _))
            {
                return found.Count == part + 1 && found.Select((e, i) => PartOf(e)!.Value.Part == i).All(ok => ok) ? found : null;
            }

            if (from == first)
            {
                return null;
            }
        }
    }

    private async Task AppendMarkerAsync(CancellationToken cancellationToken)
    {
        await using var channel = await OpenAsync(ConnectionRole.Publish, BrokerConnections.ConfirmedChannel, cancellationToken);
        var properties = new BasicProperties { Headers = new Dictionary<string, object?> { [MarkerHeader] = true } };
        await channel.BasicPublishAsync("", stream, mandatory: true, properties, ReadOnlyMemory<byte>.Empty, cancellationToken);
    }

    private async Task<IChannel> OpenAsync(ConnectionRole role, CreateChannelOptions? options, CancellationToken cancellationToken)
    {
        await (await connections.GetAsync(role, cancellationToken)).DeclareAsync(stream, arguments, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, cancellationToken);
        return await connections.CreateChannelAsync(role, options, cancellationToken);
    }

    private static (string Id, int Part, int Parts, long Offset)? PartOf(Entry entry) =>
        entry.Headers is { } h && h.TryGetValue(IdHeader, out var id) && id is byte[] idBytes
            && h.TryGetValue(PartHeader, out var part) && h.TryGetValue(PartsHeader, out var parts) && h.TryGetValue(OffsetHeader, out var offset)
            ? (Encoding.UTF8.GetString(idBytes), Convert.ToInt32(part), Convert.ToInt32(parts), Convert.ToInt64(offset))
            : null;

    /// <summary>The headers of the stream's first entry, or of the first entry of its last chunk (<paramref name="where"/>
    /// "first" or "last"); the stream is not empty, this reader's marker is on it.</summary>
    /// <exception cref="IOException">It did not come within <see cref="ReadTimeout"/>.</exception>
    private async Task<Entry> EntryAtAsync(IChannel channel, string where, CancellationToken cancellationToken)
    {
        var entry = new TaskCompletionSource<Entry>(TaskCreationOptions.RunContinuationsAsynchronously);
        var acks = new AckGate(channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (delivered.BasicProperties.Headers?.TryGetValue("x-stream-offset", out var offset) == true && offset is long at)
            {
                entry.TrySetResult(new Entry(at, delivered.BasicProperties.Headers, []));
            }

            await acks.AckAsync(delivered.DeliveryTag);
        };
        var tag = await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            arguments: new Dictionary<string, object?> { ["x-stream-offset"] = where }, consumer, cancellationToken);
        try
        {
            return await entry.Task.WaitAsync(ReadTimeout, cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new IOException($"the {where} entry of {stream} did not arrive within {ReadTimeout.TotalSeconds} s", e);
        }
        finally
        {
            // The caller closes the channel, or reads on with another consumer: this one's acks end here.
            await acks.DisposeAsync();
            await channel.BasicCancelAsync(tag, noWait: false, CancellationToken.None);
        }
    }

    /// <summary>The entries from <paramref name="from"/> to <paramref name="to"/> (fewer offsets than that: some are the
    /// broker's own, or dropped by retention), read until the entry after <paramref name="to"/>, which the caller knows
    /// is there, arrives.</summary>
    /// <param name="withBody">Which entries' bodies to keep: a window stepped over keeps no part's 256 KiB.</param>
    /// <exception cref="IOException">The entry after <paramref name="to"/> did not come.</exception>
    private async Task<List<Entry>> ReadRangeAsync(IChannel channel, long from, long to, Func<Entry, bool> withBody, CancellationToken cancellationToken)
    {
        var entries = Channel.CreateUnbounded<Entry>();
        var ended = false;
        var acks = new AckGate(channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (!ended && delivered.BasicProperties.Headers?.TryGetValue("x-stream-offset", out var offset) == true && offset is long at && at >= from)
            {
                var headers = new Entry(at, delivered.BasicProperties.Headers, []);
                entries.Writer.TryWrite(at > to || !withBody(headers) ? headers : headers with { Body = delivered.Body.ToArray() });
                ended = at > to;
            }

            await acks.AckAsync(delivered.DeliveryTag);
        };
        var tag = await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            arguments: new Dictionary<string, object?> { ["x-stream-offset"] = from }, consumer, cancellationToken);
        var read = new List<Entry>();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                timeout.CancelAfter(ReadTimeout);
                var entry = await entries.Reader.ReadAsync(timeout.Token);
                if (entry.Offset > to)
                {
                    return read;
                }

                read.Add(entry);
            }
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"entries {from} to {to} of {stream}, and the one after, did not arrive within {ReadTimeout.TotalSeconds} s", e);
        }
        finally
        {
            // As in EntryAtAsync: this consumer's acks end here.
            await acks.DisposeAsync();
            await channel.BasicCancelAsync(tag, noWait: false, CancellationToken.None);
        }
    }

    private sealed record Entry(long Offset, IDictionary<string, object?>? Headers, byte[] Body);
}

/// <summary>How a fold writes what may be absent.</summary>
public static class Snapshots
{
    public static void WriteNullable(BinaryWriter writer, string? value)
    {
        writer.Write(value is not null);
        if (value is not null)
        {
            writer.Write(value);
        }
    }

    public static string? ReadNullable(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;

    public static void WriteNullable(BinaryWriter writer, DateTimeOffset? value)
    {
        writer.Write(value is not null);
        if (value is { } at)
        {
            writer.Write(at.UtcTicks);
            writer.Write((short)at.Offset.TotalMinutes);
        }
    }

    public static DateTimeOffset? ReadNullableTime(BinaryReader reader) =>
        reader.ReadBoolean() ? new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(reader.ReadInt16())) : null;
}
