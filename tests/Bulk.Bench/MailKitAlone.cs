using System.Diagnostics;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Bulk.Bench;

/// <summary>What MailKit itself reaches on this machine: the ceiling for any Worker built on it.</summary>
internal static class MailKitAlone
{
    /// <summary>Sends <paramref name="warmup"/> messages unmeasured (the JIT warms, as the other rows do), then <paramref name="messages"/> timed.</summary>
    public static async Task<(double MailsPerSecond, double CpuSecondsPer1000)> MeasureAsync(int port, int connections, int messages, int warmup = 0)
    {
        var clients = new List<SmtpClient>();
        for (var i = 0; i < connections; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync("127.0.0.1", port);
            var client = new SmtpClient();
            await client.ConnectAsync(socket, "127.0.0.1", port, SecureSocketOptions.None);
            clients.Add(client);
        }

        // The same text as the Bulk campaign's mails, personalized the same way, but built directly.
        var filler = Campaign.Filler(2048);
        await SendAsync(0, warmup);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await SendAsync(warmup, warmup + messages);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        foreach (var client in clients)
        {
            await client.DisconnectAsync(quit: true);
            client.Dispose();
        }

        return (messages / seconds, cpu / (messages / 1000.0));

        Task SendAsync(int from, int to)
        {
            var next = from - 1;
            return Task.WhenAll(clients.Select(client => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < to)
                {
                    var message = new MimeMessage();
                    message.From.Add(new MailboxAddress("Bench", "bench@example.com"));
                    message.To.Add(new MailboxAddress("", $"r{i}@example.org"));
                    message.Subject = $"Hello Reader {i}";
                    message.Body = new TextPart("plain") { Text = $"Hi Reader {i}, you are reader {i}.\n{filler}" };
                    await client.SendAsync(message);
                }
            })));
        }
    }
}
