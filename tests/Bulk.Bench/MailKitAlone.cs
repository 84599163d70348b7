using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Bulk.Bench;

/// <summary>What MailKit itself reaches on this machine: the ceiling for any Worker built on it.</summary>
/// <remarks>Each measurement runs in a process of its own (this bench, started with <see cref="Argument"/>), as each
/// of Bulk's rows runs a new Worker: a loop inside the long-lived bench process kept getting faster from run to run
/// (4,790 → 6,800 mails/s over five runs) as the runtime recompiled it with more profile, while each Worker started cold.</remarks>
internal static class MailKitAlone
{
    /// <summary>The bench's first argument that makes it measure MailKit alone and print the result, nothing else.</summary>
    public const string Argument = "--mailkit-alone";

    /// <summary>Runs <see cref="MeasureAsync"/> in a new bench process and reads back its one result line.</summary>
    public static async Task<(double MailsPerSecond, double CpuSecondsPer1000)> MeasureInProcessOfItsOwnAsync(
        Processes processes, int port, int connections, int messages, int warmup)
    {
        var lines = new List<string>();
        var process = processes.Start("dotnet",
            [typeof(MailKitAlone).Assembly.Location, Argument, .. new[] { port, connections, messages, warmup }.Select(n => n.ToString(CultureInfo.InvariantCulture))],
            output: line => { lock (lines) { lines.Add(line); } });
        await process.WaitForExitAsync();
        lock (lines)
        {
            var result = lines.LastOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal))?.Split(' ');
            if (process.ExitCode != 0 || result is null)
            {
                throw new InvalidOperationException($"MailKit alone exited with {process.ExitCode}: {string.Join(" | ", lines.TakeLast(5))}");
            }

            return (double.Parse(result[1], CultureInfo.InvariantCulture), double.Parse(result[2], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The child's side of <see cref="MeasureInProcessOfItsOwnAsync"/>: port, connections, messages, warm-up.</summary>
    public static async Task<int> RunAsChildAsync(string[] arguments)
    {
        var n = arguments.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
        var (rate, cpu) = await MeasureAsync(n[0], n[1], n[2], n[3]);
        Console.WriteLine(FormattableString.Invariant($"result {rate} {cpu}"));
        return 0;
    }

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
