using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Bulk.Tests.Infrastructure;

/// <summary>An HTTP/1.1 exchange seen at the socket, so a test can tell whether the server really closed the connection.</summary>
public sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, string Body, bool ClosedByServer, TimeSpan Elapsed, DateTimeOffset ClosedAt);

public static class RawHttp
{
    /// <summary>Posts like a browser would (keep-alive is HTTP/1.1's default) and reads until the server hangs up.</summary>
    public static async Task<RawResponse> PostAsync(Uri baseAddress, string path, string body, string contentType = "application/json")
    {
        using var client = new TcpClient();
        await client.ConnectAsync(baseAddress.Host, baseAddress.Port);
        var stream = client.GetStream();
        var payload = Encoding.UTF8.GetBytes(body);
        var head = $"POST {path} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nContent-Type: {contentType}\r\nContent-Length: {payload.Length}\r\n\r\n";
        var clock = Stopwatch.StartNew();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(payload);

        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        var closed = false;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, read);
            }

            closed = true;
        }
        catch (OperationCanceledException)
        {
            // The server kept the connection open.
        }

        var closedAt = DateTimeOffset.UtcNow;
        return Parse(Encoding.UTF8.GetString(received.ToArray()), closed, clock.Elapsed, closedAt);
    }

    private static RawResponse Parse(string raw, bool closed, TimeSpan elapsed, DateTimeOffset closedAt)
    {
        var split = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var lines = raw[..split].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = lines.Skip(1)
            .Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var body = raw[(split + 4)..];
        if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            body = Dechunk(body);
        }

        return new RawResponse(status, headers, body, closed, elapsed, closedAt);
    }

    private static string Dechunk(string chunked)
    {
        var result = new StringBuilder();
        var at = 0;
        while (true)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = Convert.ToInt32(chunked[at..lineEnd].Split(';')[0], 16);
            if (size == 0)
            {
                return result.ToString();
            }

            result.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
