using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Bulk.Tests.Infrastructure;

/// <summary>
/// What came back from an upload the server may refuse before it ends: the answer (if one arrived), how much of the
/// body had been handed to the socket by then, whether the server cut the upload, and when the answer began.
/// </summary>
/// <param name="Closed">The answer said <c>Connection: close</c> and the server then hung up, while the client would
/// still have sent more, rather than wait for the rest of the body (Kestrel reads on for at most 5 s, so that the
/// answer reaches a client that is still sending).</param>
/// <param name="Headers">The answer's headers (empty when none came).</param>
/// <param name="ToClose">When the server hung up, if it did.</param>
public sealed record UploadOutcome(int? Status, string Body, long BytesSent, bool Cut, TimeSpan ToAnswer, bool Closed = false,
    IReadOnlyDictionary<string, string>? Headers = null, TimeSpan? ToClose = null);

/// <summary>
/// Posts a body at the socket while reading the answer at the same time, the way HttpClient cannot: a server that
/// refuses early is seen refusing early, and a body can be sent in part under a Content-Length that promises more.
/// </summary>
/// <remarks>Shared by the tests and <c>./bulk bench</c>.</remarks>
public static class RawUpload
{
    /// <summary>
    /// Sends <paramref name="body"/> (all of it, or what the server lets through) with <paramref name="contentLength"/>
    /// as its length, or chunked when it is null, and returns as soon as a whole answer has been read.
    /// </summary>
    /// <param name="pause">Waited between two pieces of the body: a client that trickles.</param>
    /// <param name="requestHeaders">More request headers, e.g. <c>Authorization: Bearer …</c>.</param>
    public static async Task<UploadOutcome> PostAsync(Uri baseAddress, string path, IEnumerable<ReadOnlyMemory<byte>> body, long? contentLength, TimeSpan timeout,
        TimeSpan? pause = null, IEnumerable<string>? requestHeaders = null)
    {
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(baseAddress.Host, baseAddress.Port);
        var stream = client.GetStream();
        using var deadline = new CancellationTokenSource(timeout);
        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var framing = contentLength is { } length ? $"Content-Length: {length.ToString(CultureInfo.InvariantCulture)}" : "Transfer-Encoding: chunked";
        var extra = string.Concat((requestHeaders ?? []).Select(h => h + "\r\n"));
        var head = $"POST {path} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nContent-Type: application/json\r\n{extra}{framing}\r\n\r\n";
        var clock = Stopwatch.StartNew();
        long sent = 0;

        var sending = Task.Run(async () =>
        {
            try
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), stopSending.Token);
                var first = true;
                foreach (var piece in body)
                {
                    if (pause is { } wait && !first)
                    {
                        await Task.Delay(wait, stopSending.Token);
                    }

                    first = false;
                    if (contentLength is null)
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{piece.Length:x}\r\n"), stopSending.Token);
                        await stream.WriteAsync(piece, stopSending.Token);
                        await stream.WriteAsync("\r\n"u8.ToArray(), stopSending.Token);
                    }
                    else
                    {
                        await stream.WriteAsync(piece, stopSending.Token);
                    }

                    Interlocked.Add(ref sent, piece.Length);
                }

                if (contentLength is null)
                {
                    await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), stopSending.Token);
                }

                return false;
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                return !stopSending.IsCancellationRequested; // the server hung up on the upload
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        });

        var (status, answer, toAnswer, headers) = await ReadAnswerAsync(stream, clock, deadline.Token);
        var closes = headers.TryGetValue("Connection", out var connection) && connection.Contains("close", StringComparison.OrdinalIgnoreCase);
        var closed = closes && await HangsUpAsync(stream, deadline.Token);
        var closedAt = clock.Elapsed;
        await stopSending.CancelAsync();
        var cut = await sending;
        return new UploadOutcome(status, answer, Interlocked.Read(ref sent), cut, toAnswer, closed, headers, closed ? closedAt : null);
    }

    /// <summary>Whether the server ends the connection after its answer (EOF or reset) before the deadline.</summary>
    private static async Task<bool> HangsUpAsync(NetworkStream stream, CancellationToken cancel)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            for (var i = 0; i < 1000; i++)
            {
                if (await stream.ReadAsync(buffer, cancel) == 0)
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Reads one HTTP/1.1 answer (Content-Length, chunked, or up to the close); no status when none came.</summary>
    private static async Task<(int? Status, string Body, TimeSpan ToAnswer, IReadOnlyDictionary<string, string> Headers)> ReadAnswerAsync(NetworkStream stream, Stopwatch clock, CancellationToken cancel)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        var toAnswer = TimeSpan.Zero;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancel)) > 0)
            {
                if (received.Length == 0)
                {
                    toAnswer = clock.Elapsed;
                }

                received.Write(buffer, 0, read);
                if (Complete(Encoding.UTF8.GetString(received.ToArray())) is { } whole)
                {
                    return whole with { ToAnswer = toAnswer };
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // Reset, or nothing more before the deadline: whatever arrived is all there is.
        }

        return Complete(Encoding.UTF8.GetString(received.ToArray()), closed: true) is { } partial ? partial with { ToAnswer = toAnswer } : (null, "", toAnswer, new Dictionary<string, string>());
    }

    private static (int? Status, string Body, TimeSpan ToAnswer, IReadOnlyDictionary<string, string> Headers)? Complete(string raw, bool closed = false)
    {
        var split = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (split < 0)
        {
            return null;
        }

        var lines = raw[..split].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var rest = raw[(split + 4)..];
        if (headers.TryGetValue("Content-Length", out var length))
        {
            var count = int.Parse(length, CultureInfo.InvariantCulture);
            return rest.Length >= count || closed ? (status, rest[..Math.Min(count, rest.Length)], TimeSpan.Zero, headers) : null;
        }

        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            return rest.EndsWith("0\r\n\r\n", StringComparison.Ordinal) || closed ? (status, Dechunk(rest), TimeSpan.Zero, headers) : null;
        }

        return closed ? (status, rest, TimeSpan.Zero, headers) : null;
    }

    private static string Dechunk(string chunked)
    {
        var result = new StringBuilder();
        var at = 0;
        while (at < chunked.Length)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (lineEnd < 0)
            {
                break;
            }

            var size = Convert.ToInt32(chunked[at..lineEnd].Split(';')[0], 16);
            if (size == 0 || lineEnd + 2 + size > chunked.Length)
            {
                break;
            }

            result.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }

        return result.ToString();
    }
}
