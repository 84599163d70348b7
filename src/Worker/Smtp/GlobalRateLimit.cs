using Bulk.Contracts;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Bulk.Worker.Smtp;

/// <summary>One rate for all Workers together (<c>Smtp__GlobalMaxMessagesPerSecond</c>), kept on the broker.</summary>
/// <remarks>
/// A token bucket made of a queue: one Worker at a time (whoever holds an exclusive "ticker" queue; if it dies the
/// broker drops the queue and another takes over) publishes the rate's tokens into a queue capped at two refills, and
/// every Worker takes a token before each send. Scaling Workers up or down does not change the total.
/// </remarks>
public sealed partial class GlobalRateLimit(IOptions<RabbitMqOptions> rabbit, IOptions<SmtpOptions> smtp, ILogger<GlobalRateLimit> logger)
    : BackgroundService
{
    private readonly double rate = smtp.Value.GlobalMaxMessagesPerSecond;
    private readonly Topology topology = rabbit.Value.ToTopology();
    private readonly SemaphoreSlim taking = new(1, 1);
    private IConnection? connection;
    private IChannel? takeChannel;

    public bool Enabled => rate > 0;

    private int TokensPerTick => Math.Max(1, (int)Math.Ceiling(rate / 10));

    private TimeSpan Tick => TimeSpan.FromSeconds(TokensPerTick / rate);

    // The rate is part of the names: Workers configured differently must not share (or fight over) one bucket.
    private string TokenQueue => $"{topology.Prefix}.tokens.{rate.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Waits for a token from the shared bucket.</summary>
    public async Task AcquireAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await taking.WaitAsync(cancellationToken);
            try
            {
                var channel = await TakeChannelAsync(cancellationToken);
                if (await channel.BasicGetAsync(TokenQueue, autoAck: true, cancellationToken) is not null)
                {
                    return;
                }
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await TickWhileHoldingTheLockAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException or BrokerUnreachableException)
            {
                // Another Worker is the ticker, or the broker is away: try again shortly.
            }

            await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task TickWhileHoldingTheLockAsync(CancellationToken stoppingToken)
    {
        var factory = new ConnectionFactory { Uri = rabbit.Value.ToBrokerUri(), ClientProvidedName = $"bulk-ticker@{Environment.MachineName}" };
        await using var tickerConnection = await factory.CreateConnectionAsync(stoppingToken);
        await using var channel = await tickerConnection.CreateChannelAsync(cancellationToken: stoppingToken);
        await DeclareBucketAsync(channel, stoppingToken);
        // Only one connection can hold this queue: its holder is the ticker.
        await channel.QueueDeclareAsync($"{TokenQueue}.ticker", durable: false, exclusive: true, autoDelete: true, cancellationToken: stoppingToken);
        LogTicking(rate);

        using var timer = new PeriodicTimer(Tick);
        var token = new BasicProperties { Persistent = false };
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            for (var i = 0; i < TokensPerTick; i++)
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

        if (connection is not { IsOpen: true })
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }

            connection = await new ConnectionFactory { Uri = rabbit.Value.ToBrokerUri(), ClientProvidedName = $"bulk-tokens@{Environment.MachineName}" }
                .CreateConnectionAsync(cancellationToken);
        }

        takeChannel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await DeclareBucketAsync(takeChannel, cancellationToken);
        return takeChannel;
    }

    // Capped at two refills: tokens nobody took soon are dropped, so an idle period allows no real burst afterwards,
    // while a Worker that polls a little late does not lose the tokens of the tick it just missed.
    private Task DeclareBucketAsync(IChannel channel, CancellationToken cancellationToken) =>
        channel.QueueDeclareAsync(TokenQueue, durable: false, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-max-length"] = 2 * TokensPerTick, ["x-overflow"] = "drop-head" },
            cancellationToken: cancellationToken);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }
    }

    [LoggerMessage(LogLevel.Information, "This Worker hands out the global rate of {Rate} messages/s")]
    private partial void LogTicking(double rate);

    [LoggerMessage(LogLevel.Warning, "The global rate bucket is unavailable ({Reason}); waiting")]
    private partial void LogUnavailable(string reason);
}
