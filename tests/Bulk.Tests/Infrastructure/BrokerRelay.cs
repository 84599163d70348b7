using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Bulk.Tests.Infrastructure;

/// <summary>
/// A TCP relay on loopback between a Front and the test broker, so that a test can cut the broker off at a chosen
/// moment (every connection dropped, new ones closed at once) and bring it back, without stopping RabbitMQ.
/// </summary>
public sealed class BrokerRelay : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Uri target;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<Socket, Socket> pairs = new();
    private readonly Task accepting;
    private volatile bool cut;
    private volatile bool held;
    private long bytesToBroker;
    private long threshold = long.MaxValue;
    private volatile bool holdAtThreshold;
    private byte[][]? cutPatterns;
    private int cutsDone;

    private BrokerRelay(string brokerUri)
    {
        target = new Uri(brokerUri);
        listener.Start();
        accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>The broker's URI with the relay's port: give it to the Front.</summary>
    public string Uri { get; private set; } = "";

    /// <summary>Bytes the relay has passed from clients to the broker so far.</summary>
    public long BytesToBroker => Interlocked.Read(ref bytesToBroker);

    public static BrokerRelay Start(string brokerUri)
    {
        var relay = new BrokerRelay(brokerUri);
        relay.Uri = new UriBuilder(relay.target) { Port = relay.Port }.Uri.ToString();
        return relay;
    }

    /// <summary>Drops every connection through the relay; until <see cref="Restore"/>, new ones are closed as soon as they open.</summary>
    public void Cut()
    {
        cut = true;
        foreach (var (client, broker) in pairs)
        {
            Close(client, broker);
        }
    }

    public void Restore() => cut = false;

    /// <summary>Stops passing what the broker says (confirms, replies) while what clients send still reaches it, until
    /// <see cref="Release"/> or <see cref="Cut"/>: a publish lands on the broker and its confirm never comes back.</summary>
    public void Hold() => held = true;

    public void Release() => held = false;

    /// <summary>Once <paramref name="bytes"/> in all have gone to the broker, passes no byte more and <see cref="Cut"/>s
    /// (<paramref name="hold"/> false), or <see cref="Hold"/>s (true): a publish in flight at that count is cut in two,
    /// or lands with its confirm held back.</summary>
    public void At(long bytes, bool hold)
    {
        holdAtThreshold = hold;
        Interlocked.Exchange(ref threshold, bytes);
    }

    /// <summary>Until <see cref="StopCuttingWhenSent"/>, each time a client sends bytes holding all of
    /// <paramref name="patterns"/> (a queue's name and an argument, say), passes none of them, drops every connection
    /// and lets new ones in again at once: a blip in the middle of one chosen exchange, every time it is tried.</summary>
    public void CutWhenSent(params byte[][] patterns) => Volatile.Write(ref cutPatterns, patterns);

    public void StopCuttingWhenSent() => Volatile.Write(ref cutPatterns, null);

    /// <summary>How many times <see cref="CutWhenSent"/> has cut.</summary>
    public int CutsDone => Volatile.Read(ref cutsDone);

    /// <summary>Waits until at least <paramref name="bytes"/> more than <paramref name="from"/> have gone to the broker.</summary>
    public async Task WaitForBytesToBrokerAsync(long from, long bytes, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (BytesToBroker - from < bytes)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Only {BytesToBroker - from} of {bytes} bytes went to the broker within {timeout}.");
            }

            await Task.Delay(1);
        }
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (cut)
            {
                client.Dispose();
                continue;
            }

            var broker = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await broker.ConnectAsync(target.Host, target.Port, stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                client.Dispose();
                broker.Dispose();
                continue;
            }

            client.NoDelay = true;
            pairs[client] = broker;
            _ = PumpAsync(client, broker, toBroker: true);
            _ = PumpAsync(broker, client, toBroker: false);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool toBroker)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                if (read == 0 || cut)
                {
                    break;
                }

                while (held && !toBroker && !cut)
                {
                    await Task.Delay(5, stop.Token);
                }

                if (cut)
                {
                    break;
                }

                if (toBroker && Volatile.Read(ref cutPatterns) is { } patterns && patterns.All(p => buffer.AsSpan(0, read).IndexOf(p) >= 0))
                {
                    Interlocked.Increment(ref cutsDone);
                    Cut();
                    Restore();
                    break;
                }

                var passed = read;
                var limit = Interlocked.Read(ref threshold);
                if (toBroker && !holdAtThreshold && BytesToBroker + read >= limit)
                {
                    passed = (int)Math.Max(0, limit - BytesToBroker);
                }

                await to.SendAsync(buffer.AsMemory(0, passed), SocketFlags.None, stop.Token);
                if (toBroker)
                {
                    if (Interlocked.Add(ref bytesToBroker, passed) >= limit)
                    {
                        Interlocked.Exchange(ref threshold, long.MaxValue);
                        if (holdAtThreshold)
                        {
                            Hold();
                        }
                        else
                        {
                            Cut();
                            break;
                        }
                    }
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // One side went away: the pair is closed below.
        }

        var client = toBroker ? from : to;
        if (pairs.TryRemove(client, out var broker))
        {
            Close(client, broker);
        }
    }

    private static void Close(Socket client, Socket broker)
    {
        client.Dispose();
        broker.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        Cut();
        await accepting;
        stop.Dispose();
    }
}
