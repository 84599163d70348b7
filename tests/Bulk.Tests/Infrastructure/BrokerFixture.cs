using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Testcontainers.RabbitMq;

namespace Bulk.Tests.Infrastructure;

/// <summary>A real RabbitMQ for the tests: the one named by <see cref="EnvironmentVariable"/>, else a Testcontainers one.</summary>
/// <remarks>Never skips: with no broker at all the tests fail and say how to get one.</remarks>
public sealed class BrokerFixture : IAsyncLifetime
{
    public const string EnvironmentVariable = "BULK_TEST_RABBITMQ_URI";

    private RabbitMqContainer? container;
    private IConnection? connection;

    public string Uri { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Uri = configured;
        }
        else
        {
            try
            {
                container = new RabbitMqBuilder("rabbitmq:3.13-management").Build();
                await container.StartAsync();
                Uri = container.GetConnectionString();
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"No RabbitMQ for the tests. Set {EnvironmentVariable}=amqp://guest:guest@127.0.0.1:5672/ to use a running " +
                    "broker (./bulk test installs and starts Debian's rabbitmq-server and sets it), or make a Docker engine " +
                    $"reachable so that Testcontainers can start one. Docker said: {e.Message}", e);
            }
        }

        try
        {
            connection = await new ConnectionFactory { Uri = new Uri(Uri) }.CreateConnectionAsync();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"RabbitMQ at {Uri} (from {EnvironmentVariable}) does not answer: {e.Message}", e);
        }
    }

    /// <summary>Messages ready in a queue; 0 for a queue that does not exist.</summary>
    public async Task<uint> MessageCountAsync(string queue)
    {
        await using var channel = await connection!.CreateChannelAsync();
        try
        {
            var ok = await channel.QueueDeclarePassiveAsync(queue);
            return ok.MessageCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0;
        }
    }

    /// <summary>Takes one message off a queue (acknowledged), or null when it is empty.</summary>
    public async Task<BasicGetResult?> GetAsync(string queue)
    {
        await using var channel = await connection!.CreateChannelAsync();
        return await channel.BasicGetAsync(queue, autoAck: true);
    }

    /// <remarks>A quorum queue declared a moment ago may have no leader yet, and the broker nacks what it cannot place
    /// (seen once in a full run): a nack is tried again for a few seconds, as the Front does with a campaign.</remarks>
    public async Task PublishAsync(string queue, byte[] body)
    {
        await using var channel = await connection!.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await channel.BasicPublishAsync("", queue, mandatory: true, new BasicProperties { Persistent = true }, body);
                return;
            }
            catch (RabbitMQ.Client.Exceptions.PublishException) when (attempt < 20)
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>Every entry of a stream written before the call, oldest first: appends <paramref name="marker"/> and reads up to it.</summary>
    public async Task<IReadOnlyList<byte[]>> ReadStreamAsync(string stream, byte[] marker, TimeSpan timeout)
    {
        await PublishAsync(stream, marker);
        await using var channel = await connection!.CreateChannelAsync();
        await channel.BasicQosAsync(0, 500, global: false);
        // The read stops at the marker with entries still arriving: an ack after the close would close the shared connection.
        await using var acks = new Bulk.Broker.AckGate(channel);
        var entries = new List<byte[]>();
        var end = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (delivered.Body.Span.SequenceEqual(marker))
            {
                end.TrySetResult();
            }
            else if (!end.Task.IsCompleted)
            {
                entries.Add(delivered.Body.ToArray());
            }

            await acks.AckAsync(delivered.DeliveryTag);
        };
        await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            arguments: new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        await end.Task.WaitAsync(timeout);
        return [.. entries];
    }

    public async Task DeleteQueuesAsync(params string[] queues)
    {
        await using var channel = await connection!.CreateChannelAsync();
        foreach (var queue in queues)
        {
            await channel.QueueDeleteAsync(queue);
        }
    }

    public async Task DisposeAsync()
    {
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }

        if (container is not null)
        {
            await container.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class BrokerCollection : ICollectionFixture<BrokerFixture>
{
    public const string Name = "broker";
}
