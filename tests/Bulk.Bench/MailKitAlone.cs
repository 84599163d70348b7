using System.Diagnostics;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Bulk.Bench;

/// <summary>What MailKit itself reaches on this machine: the ceiling for any Worker built on it.</summary>
internal static class MailKitAlone
{
    public static async Task<(double MailsPerSecond, double CpuSecondsPer1000)> MeasureAsync(int port, int connections, int messages)
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

        var filler = new string('x', 2000);
        var next = -1;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(clients.Select(client => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < messages)
            {
                var message = new MimeMessage();
                message.From.Add(new MailboxAddress("Bench", "bench@example.com"));
                message.To.Add(new MailboxAddress("", $"r{i}@example.org"));
                message.Subject = $"Hello {i}";
                message.Body = new TextPart("plain") { Text = $"Hi reader {i}.\n{filler}" };
                await client.SendAsync(message);
            }
        })));
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        foreach (var client in clients)
        {
            await client.DisconnectAsync(quit: true);
            client.Dispose();
        }

        return (messages / seconds, cpu / (messages / 1000.0));
    }
}
