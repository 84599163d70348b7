using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Threading.RateLimiting;
using RabbitMQ.Client;

namespace Bulk.Bench;

/// <summary>Writes entries straight into a stream as fast as the broker confirms them: one channel per lane, each
/// with up to <see cref="Window"/> publishes awaiting their confirm.</summary>
/// <remarks>Each entry is published as the real writers publish it (persistent, JSON, mandatory) and counts only once
/// confirmed. A lane's entries reach the stream in the order given; the lanes interleave as they go.</remarks>
internal sealed class HistoryWriter : IAsyncDisposable
{
    private const int Window = 1000;

    private static readonly BasicProperties Properties = new() { Persistent = true, ContentType = "application/json" };

    private readonly IConnection connection;
    private readonly IChannel[] channels;

    private HistoryWriter(IConnection connection, IChannel[] channels)
    {
        this.connection = connection;
        this.channels = channels;
    }

    public static async Task<HistoryWriter> OpenAsync(string uri, int lanes)
    {
        var connection = await new ConnectionFactory { Uri = new Uri(uri), ClientProvidedName = "bulk-bench-history" }.CreateConnectionAsync();
        var channels = new IChannel[lanes];
        for (var i = 0; i < lanes; i++)
        {
            // The limiter holds more permits than the window ever uses, so it never delays a publish (nor reorders one).
            channels[i] = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true,
                publisherConfirmationTrackingEnabled: true,
                outstandingPublisherConfirmationsRateLimiter: new ConcurrencyLimiter(new ConcurrencyLimiterOptions
                {
                    PermitLimit = Window * 2,
                    QueueLimit = Window * 2,
                    QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                })));
        }

        return new HistoryWriter(connection, channels);
    }

    /// <summary>Publishes each lane's entries on its own channel and returns once the broker confirmed every one.</summary>
    /// <param name="observe">Sees every entry as it is published (on the lane's task).</param>
    public async Task<WriteResult> WriteAsync<TEvent>(string stream, IReadOnlyList<IEnumerable<TEvent>> lanes, JsonTypeInfo<TEvent> typeInfo,
        Action<int, TEvent>? observe = null)
    {
        if (lanes.Count > channels.Length)
        {
            throw new ArgumentException($"{lanes.Count} lanes, {channels.Length} channels", nameof(lanes));
        }

        var clock = Stopwatch.StartNew();
        var written = await Task.WhenAll(lanes.Select((entries, lane) => Task.Run(() => WriteLaneAsync(channels[lane], stream, entries, typeInfo,
            e => observe?.Invoke(lane, e)))));
        return new WriteResult(written.Sum(w => w.Entries), written.Sum(w => w.Bytes), clock.Elapsed);
    }

    private static async Task<(long Entries, long Bytes)> WriteLaneAsync<TEvent>(IChannel channel, string stream, IEnumerable<TEvent> entries,
        JsonTypeInfo<TEvent> typeInfo, Action<TEvent> observe)
    {
        long count = 0, bytes = 0;
        var confirms = new Queue<ValueTask>(Window);
        foreach (var entry in entries)
        {
            observe(entry);
            var body = JsonSerializer.SerializeToUtf8Bytes(entry, typeInfo);
            bytes += body.Length;
            count++;
            confirms.Enqueue(channel.BasicPublishAsync("", stream, mandatory: true, Properties, body));
            if (confirms.Count >= Window)
            {
                await confirms.Dequeue();
            }
        }

        while (confirms.Count > 0)
        {
            await confirms.Dequeue();
        }

        return (count, bytes);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in channels)
        {
            await channel.DisposeAsync();
        }

        await connection.DisposeAsync();
    }
}

/// <summary>Entries confirmed by the broker, their bytes, and how long the write took.</summary>
internal sealed record WriteResult(long Entries, long Bytes, TimeSpan Elapsed)
{
    public double EntriesPerSecond => Entries / Elapsed.TotalSeconds;
}
