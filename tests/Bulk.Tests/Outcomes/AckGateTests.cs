using Bulk.Broker;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Xunit.Abstractions;

namespace Bulk.Tests.Outcomes;

/// <summary>A stream reader that stops as soon as it has what it wanted, while deliveries still arrive: its acks must
/// not reach the broker after its channel's close, or the broker closes the whole connection.</summary>
[Collection(BrokerCollection.Name)]
public sealed class AckGateTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Entries = 2000;
    private const int Reads = 40;

    [Fact]
    public async Task ReadersThatStopMidStream_LeaveTheirSharedConnectionOpen()
    {
        var stream = await StreamOfAsync(Entries);
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        for (var read = 0; read < Reads; read++)
        {
            var got = await ReadUntilAsync(connection, stream, stopAfter: 1 + read * 37 % 400, gated: true);
            Assert.True(connection.IsOpen, $"read {read} closed the connection: {connection.CloseReason}");
            Assert.True(got > 0);
        }

        await broker.DeleteQueuesAsync(stream);
    }

    /// <summary>The same reads acking straight on the channel: shows that the gate is what keeps the connection.</summary>
    [Fact]
    public async Task WithoutTheGate_TheSameReadsCloseTheConnection()
    {
        var stream = await StreamOfAsync(Entries);
        var lost = 0;
        for (var attempt = 0; attempt < 5 && lost == 0; attempt++)
        {
            await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
            for (var read = 0; read < Reads && connection.IsOpen; read++)
            {
                try
                {
                    await ReadUntilAsync(connection, stream, stopAfter: 1 + read * 37 % 400, gated: false);
                }
                catch (Exception e) when (!connection.IsOpen)
                {
                    output.WriteLine($"attempt {attempt}, read {read}: {e.GetType().Name}");
                }
            }

            output.WriteLine($"attempt {attempt}: connection {(connection.IsOpen ? "open" : $"closed: {connection.CloseReason}")}");
            lost += connection.IsOpen ? 0 : 1;
        }

        await broker.DeleteQueuesAsync(stream);
        Assert.True(lost > 0, "acks sent straight on a closing channel never closed the connection");
    }

    private static async Task<int> ReadUntilAsync(IConnection connection, string stream, int stopAfter, bool gated)
    {
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var count = 0;
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, 200, global: false);
        await using var acks = new AckGate(channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (Interlocked.Increment(ref count) >= stopAfter)
            {
                enough.TrySetResult();
            }

            if (gated)
            {
                await acks.AckAsync(delivered.DeliveryTag);
            }
            else
            {
                await channel.BasicAckAsync(delivered.DeliveryTag, multiple: false);
            }
        };
        await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            arguments: new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        await enough.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return Volatile.Read(ref count);
    }

    private async Task<string> StreamOfAsync(int entries)
    {
        var stream = $"test.ackgate.{Guid.NewGuid():N}";
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        await channel.QueueDeclareAsync(stream, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "stream" });
        var body = new byte[64];
        await Task.WhenAll(Enumerable.Range(0, entries).Select(_ => channel.BasicPublishAsync("", stream, body).AsTask()));
        return stream;
    }
}
