using Bulk.Broker;
using Bulk.Contracts;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Bulk.Worker.Smtp;

/// <summary>One rate for all Workers together (<c>Smtp__GlobalMaxMessagesPerSecond</c>), kept on the broker.</summary>
/// <remarks>
/// A token bucket made of a queue: one Worker at a time (whoever holds an exclusive "ticker" queue; if it dies the
/// broker drops the queue and another takes over) publishes the rate's tokens into a queue capped at two refills, and
/// every Worker takes a token before each send. Scaling Workers up or down does not change the total. The bucket is a
/// quorum queue, so it outlives the loss of any one node of a cluster; the lock dies with its holder's connection.
/// </remarks>
public sealed partial class GlobalRateLimit(BrokerConnections connections, IOptions<SmtpOptions> smtp, ILogger<GlobalRateLimit> logger)
    : BackgroundService
{
    private readonly double rate = smtp.Value.GlobalMaxMessagesPerSecond;
    private readonly Topology topology = connections.Topology;
    private readonly SemaphoreSlim taking = new(1, 1);
    private IChannel? takeChannel;

    public bool Enabled => rate > 0;

    private int TokensPerTick => Math.Max(1, (int)Math.Ceiling(rate / 10));

    private TimeSpan Tick => TimeSpan.FromSeconds(TokensPerTick / rate);

    // The rate is part of the names: Workers configured differently must not share (or fight over) one bucket.
    private string TokenQueue => topology.RateTokens(rate);

    /// <summary>Waits for a token from the shared bucket.</summary>
    public async Task AcquireAsync(CancellationToken cancellationToken)
    {
        // Every take is a round trip to the broker; only a send that found the bucket empty counts as waiting.
        long waitingSince = 0;
        while (true)
        {
            await taking.WaitAsync(cancellationToken);
            try
            {
                var channel = await TakeChannelAsync(cancellationToken);
                if (await channel.BasicGetAsync(TokenQueue, autoAck: true, cancellationToken) is not null)
                {
                    if (waitingSince != 0)
                    {
                        SmtpMetrics.Waited(SmtpMetrics.GlobalLimit, waitingSince);
                    }

                    return;
                }

                waitingSince = waitingSince == 0 ? System.Diagnostics.Stopwatch.GetTimestamp() : waitingSince;
            }
            catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException or BrokerUnreachableException)
            {
                takeChannel = null;
                LogUnavailable(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
            finally
            {
                taking.Release();
            }

            await Task.Delay(Tick / 4, cancellationToken);
        }
    }

    /// <summary>Tries to be the ticker, and ticks while it is: another Worker holding the lock, or a lost connection,
    /// ends a try, and the next one follows after a pause.</summary>
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Enabled
        ? Reconnecting.RunAsync(TickWhileHoldingTheLockAsync, (_, _) => { }, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2), stoppingToken)
        : Task.CompletedTask;

    private async Task TickWhileHoldingTheLockAsync(CancellationToken stoppingToken)
    {
        await using var channel = await connections.CreateChannelAsync(ConnectionRole.Publish, null, stoppingToken);
        await DeclareBucketAsync(channel, stoppingToken);
        // Only one connection can hold this queue: its holder is the ticker, until its connection closes.
        await channel.QueueDeclareAsync($"{TokenQueue}.ticker", durable: false, exclusive: true, autoDelete: true, cancellationToken: stoppingToken);
        LogTicking(rate);

        using var timer = new PeriodicTimer(Tick);
        var token = new BasicProperties();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        long issued = 0;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            // Tokens owed by the clock, not one batch per tick: a PeriodicTimer skips ticks that come while a publish
            // is held up (the connection is shared), and each skipped tick would be rate lost for good.
            var owed = (long)(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds * rate) - issued;
            issued += owed;
            for (var i = 0; i < Math.Min(owed, 2 * TokensPerTick); i++)
            {
                await channel.BasicPublishAsync("", TokenQueue, mandatory: false, token, ReadOnlyMemory<byte>.Empty, stoppingToken);
            }
        }
    }

    private async Task<IChannel> TakeChannelAsync(CancellationToken cancellationToken)
    {
        if (takeChannel is { IsOpen: true } open)
        {
            return open;
        }

        takeChannel = await connections.CreateChannelAsync(ConnectionRole.Publish, null, cancellationToken);
        await DeclareBucketAsync(takeChannel, cancellationToken);
        return takeChannel;
    }

    // Capped at two refills: tokens nobody took soon are dropped, so an idle period allows no real burst afterwards,
    // while a Worker that polls a little late does not lose the tokens of the tick it just missed.
    private Task DeclareBucketAsync(IChannel channel, CancellationToken cancellationToken) =>
        channel.QueueDeclareAsync(TokenQueue, durable: true, exclusive: false, autoDelete: false,
            arguments: topology.RateTokensArguments(2 * TokensPerTick), cancellationToken: cancellationToken);

    [LoggerMessage(LogLevel.Information, "This Worker hands out the global rate of {Rate} messages/s")]
    private partial void LogTicking(double rate);

    [LoggerMessage(LogLevel.Warning, "The global rate bucket is unavailable ({Reason}); waiting")]
    private partial void LogUnavailable(string reason);
}
