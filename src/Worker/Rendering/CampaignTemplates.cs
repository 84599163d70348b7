using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Bulk.Broker;
using Bulk.Contracts;
using Bulk.Templates;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Bulk.Worker.Rendering;

/// <summary>A job's template is gone from the templates stream (its retention, or the stream was declared anew).</summary>
public sealed class TemplateGoneException(string message) : Exception(message);

/// <summary>Keeps a split campaign's message template once, on the templates stream, and gives each job its parsed
/// template from a cache bounded in bytes.</summary>
/// <remarks>
/// A campaign's jobs used to carry a copy of the template each: a 1 MiB template and 100,000 recipients made a gigabyte
/// of jobs, published by one Worker in one go. Now the split writes the template once and learns its offset (a reader
/// attached at the stream's end before the write sees the entry arrive with it), and each job carries that offset.
/// A Worker reads a template once and parses it once, whatever the number of its jobs it delivers; concurrent jobs of
/// one campaign wait for the same read. Broker trouble on the way is the job's broker trouble: it waits and comes back.
/// </remarks>
public sealed partial class CampaignTemplates(
    BrokerConnections connections,
    MessageRenderer renderer,
    IOptions<RabbitMqOptions> rabbit,
    ILogger<CampaignTemplates> logger)
{
    private const string IdHeader = "bulk-template";

    /// <summary>The most the cache holds, counted as twice the templates' UTF-8 size (their parsed form takes about that).</summary>
    public const long CacheBytes = 64L * 1024 * 1024;

    /// <summary>How long a read or a write waits for the broker before it counts as broker trouble.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly string stream = connections.Topology.TemplatesStream;
    private readonly IDictionary<string, object?> arguments = connections.Topology.TemplatesStreamArguments(rabbit.Value.TemplatesMaxAge);
    private readonly Lock cacheLock = new();
    private readonly Dictionary<string, LinkedListNode<Cached>> cache = new(StringComparer.Ordinal);
    private readonly LinkedList<Cached> recent = new();
    private long cachedBytes;

    /// <summary>How many templates this Worker has read from the stream (each read once, then cached): for tests and the log.</summary>
    public int Reads => reads;

    private int reads;

    /// <summary>Writes <paramref name="template"/> to the templates stream and returns where it is, once the broker confirmed it.</summary>
    /// <exception cref="IOException">The broker did not take it, or the entry did not come back in time.</exception>
    public async Task<TemplateRef> StoreAsync(string campaignId, MessageTemplate template, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var body = JsonSerializer.SerializeToUtf8Bytes(template, BulkJson.Default.MessageTemplate);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await DeclareAsync(timeout.Token);
            await using var reading = await connections.CreateChannelAsync(ConnectionRole.Consume, null, timeout.Token);
            await reading.BasicQosAsync(0, 1, global: false, timeout.Token);
            await using var acks = new AckGate(reading);
            var seen = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            var consumer = new AsyncEventingBasicConsumer(reading);
            consumer.ReceivedAsync += async (_, delivered) =>
            {
                if (IdOf(delivered.BasicProperties) == id && OffsetOf(delivered.BasicProperties) is { } offset)
                {
                    seen.TrySetResult(offset);
                }

                await acks.AckAsync(delivered.DeliveryTag);
            };
            // Attached at the end before the write: the entry is delivered to it, with its offset. Other Workers'
            // templates written meanwhile go by; there are few.
            await reading.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
                arguments: new Dictionary<string, object?> { ["x-stream-offset"] = "next" }, consumer, timeout.Token);

            await using (var writing = await connections.CreateChannelAsync(ConnectionRole.Publish, BrokerConnections.ConfirmedChannel, timeout.Token))
            {
                var properties = new BasicProperties
                {
                    Persistent = true,
                    ContentType = "application/json",
                    Headers = new Dictionary<string, object?> { [IdHeader] = id, [AmqpHeaders.CampaignId] = campaignId },
                };
                await writing.BasicPublishAsync("", stream, mandatory: true, properties, body, timeout.Token);
            }

            var at = await seen.Task.WaitAsync(timeout.Token);
            LogStored(campaignId, body.Length, at);
            return new TemplateRef(id, at);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"the template of campaign {campaignId} was not confirmed on {stream} within {Timeout.TotalSeconds} s", e);
        }
    }

    /// <summary>The job's template, parsed: its own, or the one it points to on the templates stream.</summary>
    /// <exception cref="TemplateException">The template does not parse, or its sender is not a mailbox.</exception>
    /// <exception cref="TemplateGoneException">The job points to a template the stream no longer holds.</exception>
    /// <exception cref="IOException">The broker did not answer in time.</exception>
    public async Task<CompiledCampaign> CompiledAsync(DeliveryJob job, CancellationToken cancellationToken)
    {
        if (job.TemplateAt is not { } at)
        {
            return renderer.Compile(job.CampaignId, job.Template!);
        }

        Task<(CompiledCampaign, long)> loading;
        lock (cacheLock)
        {
            if (cache.TryGetValue(at.Id, out var node))
            {
                recent.Remove(node);
                recent.AddFirst(node);
                loading = node.Value.Loading;
            }
            else
            {
                var campaignId = job.CampaignId;
                loading = Task.Run(() => LoadAsync(campaignId, at));
                cache[at.Id] = recent.AddFirst(new Cached(at.Id, loading));
            }
        }

        try
        {
            var (compiled, bytes) = await loading.WaitAsync(cancellationToken);
            Account(at.Id, bytes);
            return compiled.CampaignId == job.CampaignId
                ? compiled
                : throw new TemplateGoneException($"the template at offset {at.Offset} of {stream} belongs to another campaign");
        }
        catch (Exception) when (loading.IsFaulted || loading.IsCanceled)
        {
            // A failed read is not kept: the next job of the campaign tries again.
            Forget(at.Id, loading);
            throw;
        }
    }

    private async Task<(CompiledCampaign, long)> LoadAsync(string campaignId, TemplateRef at)
    {
        // Not the caller's token: jobs of the campaign may be waiting for this read, whoever started it.
        using var timeout = new CancellationTokenSource(Timeout);
        var (headers, body) = await ReadAsync(at.Offset, timeout.Token);
        Interlocked.Increment(ref reads);
        if (IdOf(headers) != at.Id)
        {
            throw new TemplateGoneException($"the campaign's template is no longer on {stream} (kept {rabbit.Value.TemplatesMaxAge}: RabbitMq__TemplatesMaxAge)");
        }

        var owner = headers?.TryGetValue(AmqpHeaders.CampaignId, out var value) == true && value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : null;
        var template = JsonSerializer.Deserialize(body, BulkJson.Default.MessageTemplate)
                       ?? throw new TemplateGoneException($"the entry at offset {at.Offset} of {stream} is empty");
        LogRead(owner ?? campaignId, body.Length, at.Offset);
        return (renderer.Compile(owner ?? campaignId, template), 2L * body.Length);
    }

    /// <summary>The entry at <paramref name="offset"/>, or the first one after it when it is gone.</summary>
    private async Task<(IDictionary<string, object?>? Headers, byte[] Body)> ReadAsync(long offset, CancellationToken cancellationToken)
    {
        try
        {
            await DeclareAsync(cancellationToken);
            await using var channel = await connections.CreateChannelAsync(ConnectionRole.Consume, null, cancellationToken);
            await channel.BasicQosAsync(0, 1, global: false, cancellationToken);
            await using var acks = new AckGate(channel);
            var entries = Channel.CreateBounded<(IDictionary<string, object?>?, byte[])>(1);
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += async (_, delivered) =>
            {
                // A stream consumer gets the whole chunk holding the offset: the entries before it are passed over.
                if (OffsetOf(delivered.BasicProperties) is { } found && found >= offset)
                {
                    entries.Writer.TryWrite((delivered.BasicProperties.Headers, delivered.Body.ToArray()));
                }

                await acks.AckAsync(delivered.DeliveryTag);
            };
            var tag = await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
                arguments: new Dictionary<string, object?> { ["x-stream-offset"] = offset }, consumer, cancellationToken);
            var entry = await entries.Reader.ReadAsync(cancellationToken);
            await channel.BasicCancelAsync(tag, noWait: false, CancellationToken.None);
            return entry;
        }
        catch (OperationCanceledException e)
        {
            throw new IOException($"the template at offset {offset} of {stream} did not arrive within {Timeout.TotalSeconds} s", e);
        }
    }

    private async Task DeclareAsync(CancellationToken cancellationToken)
    {
        // Declared once for the cluster, whichever connection does it; a stream of other arguments is used as it is.
        await (await connections.GetAsync(ConnectionRole.Publish, cancellationToken)).DeclareAsync(stream, arguments, logger, cancellationToken);
    }

    private void Account(string id, long bytes)
    {
        lock (cacheLock)
        {
            if (!cache.TryGetValue(id, out var node) || node.Value.Bytes > 0)
            {
                return;
            }

            node.Value.Bytes = bytes;
            cachedBytes += bytes;
            // The least recently used go first; the one just read stays, however large.
            while (cachedBytes > CacheBytes && recent.Last is { } last && last != node)
            {
                recent.RemoveLast();
                cache.Remove(last.Value.Id);
                cachedBytes -= last.Value.Bytes;
            }
        }
    }

    private void Forget(string id, Task loading)
    {
        lock (cacheLock)
        {
            if (cache.TryGetValue(id, out var node) && node.Value.Loading == loading)
            {
                recent.Remove(node);
                cache.Remove(id);
                cachedBytes -= node.Value.Bytes;
            }
        }
    }

    private static string? IdOf(IReadOnlyBasicProperties properties) => IdOf(properties.Headers);

    private static string? IdOf(IDictionary<string, object?>? headers) =>
        headers?.TryGetValue(IdHeader, out var value) == true && value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : null;

    private static long? OffsetOf(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue("x-stream-offset", out var value) == true && value is long offset ? offset : null;

    private sealed class Cached(string id, Task<(CompiledCampaign, long)> loading)
    {
        public string Id { get; } = id;

        public Task<(CompiledCampaign, long)> Loading { get; } = loading;

        public long Bytes { get; set; }
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId}: its template ({Bytes} bytes) is kept once, at offset {Offset} of the templates stream")]
    private partial void LogStored(string campaignId, int bytes, long offset);

    [LoggerMessage(LogLevel.Debug, "Campaign {CampaignId}: read its template ({Bytes} bytes) from offset {Offset} of the templates stream")]
    private partial void LogRead(string campaignId, int bytes, long offset);
}
