using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;

namespace Bulk.Bench;

/// <summary>Every process the benchmark starts, stopped (SIGTERM, then kill) when it ends.</summary>
internal sealed class Processes : IAsyncDisposable
{
    private readonly List<Process> started = [];

    /// <param name="output">Sees each line the process writes, to stdout or stderr; otherwise they are dropped.</param>
    public Process Start(string file, IEnumerable<string> arguments, IDictionary<string, string>? environment = null, Action<string>? output = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, line) => Pass(line.Data);
        process.ErrorDataReceived += (_, line) => Pass(line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        started.Add(process);
        return process;

        void Pass(string? line)
        {
            if (line is not null)
            {
                output?.Invoke(line);
            }
        }
    }

    public async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        started.Remove(process);
        process.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in started.ToList())
        {
            await StopAsync(process);
        }
    }
}

internal static class Net
{
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task WaitForPortAsync(int port)
    {
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new TimeoutException($"nothing listens on 127.0.0.1:{port}");
    }

    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

internal static class Sink
{
    /// <summary>smtp-sink refuses to run as root without dropping privileges.</summary>
    public static string[] Privileges() => Environment.UserName == "root" ? ["-u", "nobody"] : [];
}

internal static class Machine
{
    public static string Describe() =>
        $"{Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1 << 30)} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";

    /// <summary>User + system CPU time of a process, from /proc/PID/stat.</summary>
    public static double CpuSeconds(int pid)
    {
        var fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / 100.0; // USER_HZ is 100 on Linux
    }

    /// <summary>The 1-minute load average: how busy the (shared) machine was around a measurement.</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    public static double PeakRssMegabytes(int pid) => StatusKilobytes(pid, "VmHWM") / 1024.0;

    public static double CurrentRssMegabytes(int pid) => StatusKilobytes(pid, "VmRSS") / 1024.0;

    /// <summary>Sets a process's VmHWM back to its current RSS (Linux 4.0+, "5" into /proc/PID/clear_refs); false where that is not allowed.</summary>
    public static bool ResetPeakRss(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long StatusKilobytes(int pid, string field) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}

internal static class Campaign
{
    /// <summary>The text every personalized mail carries after its greeting: one long line, as the other rows send it too.</summary>
    public static string Filler(int personalizedBytes) =>
        string.Concat(Enumerable.Repeat("Bulk sends one message to thousands of recipients. ", Math.Max(0, personalizedBytes / 52)));

    /// <summary>A campaign to <paramref name="count"/> recipients, each with its own name, of about <paramref name="personalizedBytes"/> per mail.</summary>
    public static string Build(int count, int personalizedBytes)
    {
        var recipients = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            recipients.Add(new JsonObject { ["email"] = $"r{i}@example.org", ["data"] = new JsonObject { ["name"] = $"Reader {i}", ["n"] = i } });
        }

        var filler = Filler(personalizedBytes);
        return new JsonObject
        {
            ["from"] = "Bench <bench@example.com>",
            ["subject"] = "Hello {{ name }}",
            ["text"] = "Hi {{ name }}, you are reader {{ n }}.\n" + filler,
            ["recipients"] = recipients,
        }.ToJsonString();
    }
}

/// <summary>A Front process and what the benchmark asks of it.</summary>
internal sealed class FrontClient(Process process, HttpClient http)
{
    public Process Process => process;

    public Uri Address => http.BaseAddress!;

    public async Task<string> PostAsync(string body)
    {
        using var response = await http.PostAsync("/campaigns", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"POST /campaigns answered {(int)response.StatusCode}: {text}");
        }

        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public Task<CampaignStatus> StatusAsync(string id) => CampaignPolling.StatusAsync(http, id);

    public async Task CancelAsync(string id) => (await http.PostAsync($"/campaigns/{id}/cancel", null)).Dispose();

    public Task<CampaignStatus> WaitUntilAsync(string id, Func<CampaignStatus, bool> done, TimeSpan timeout) =>
        CampaignPolling.WaitForStatusAsync(http, id, done, timeout);
}

internal static class BulkProcesses
{
    private const string UnsubscribeSecret = "bench-unsubscribe-secret-0123456789abcdef";

    public static async Task<FrontClient> StartFrontAsync(Processes processes, string root, string brokerUri, string prefix,
        IReadOnlyDictionary<string, string>? extra = null)
    {
        var port = Net.FreePort();
        var process = LaunchFront(processes, root, brokerUri, prefix, port, extra);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(2) };
        for (var i = 0; i < 300; i++)
        {
            try
            {
                // A request that reaches the Front while it starts may not be answered: ask again rather than wait.
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                if ((await http.GetAsync("/readyz", attempt.Token)).IsSuccessStatusCode)
                {
                    return new FrontClient(process, http);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the Front did not become ready");
    }

    public static async Task<Process> StartWorkerAsync(Processes processes, string root, string brokerUri, string prefix, int smtpPort, int connections,
        IReadOnlyDictionary<string, string>? extra = null)
    {
        var process = LaunchWorker(processes, root, brokerUri, prefix, smtpPort, connections, extra);
        await Task.Delay(TimeSpan.FromSeconds(3)); // connects, declares, catches up with the stream
        return process;
    }

    /// <summary>Starts a Front listening on <paramref name="port"/> and returns at once; <paramref name="extra"/> adds or overrides settings.</summary>
    public static Process LaunchFront(Processes processes, string root, string brokerUri, string prefix, int port,
        IReadOnlyDictionary<string, string>? extra = null, Action<string>? output = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["RabbitMq__Uri"] = brokerUri,
            ["RabbitMq__Prefix"] = prefix,
            ["Logging__LogLevel__Default"] = "Warning",
            ["Unsubscribe__Secret"] = UnsubscribeSecret,
            ["Front__CampaignsPerMinute"] = "0", // the bench posts as fast as it can
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        return processes.Start("dotnet", [Path.Combine(root, "src/Front/bin/Release/net10.0/Bulk.Front.dll"), "--urls", $"http://127.0.0.1:{port}"],
            environment, output);
    }

    /// <summary>Starts a Worker sending to 127.0.0.1:<paramref name="smtpPort"/> and returns at once; <paramref name="extra"/> adds or overrides settings.</summary>
    public static Process LaunchWorker(Processes processes, string root, string brokerUri, string prefix, int smtpPort, int connections,
        IReadOnlyDictionary<string, string>? extra = null, Action<string>? output = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["RabbitMq__Uri"] = brokerUri,
            ["RabbitMq__Prefix"] = prefix,
            ["Smtp__Host"] = "127.0.0.1",
            ["Smtp__Port"] = smtpPort.ToString(CultureInfo.InvariantCulture),
            ["Smtp__Security"] = "None",
            ["Smtp__MaxConnections"] = connections.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
            ["Unsubscribe__Secret"] = UnsubscribeSecret,
            ["Unsubscribe__BaseUrl"] = "https://mail.example.com",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        return processes.Start("dotnet", [Path.Combine(root, "src/Worker/bin/Release/net10.0/Bulk.Worker.dll")], environment, output);
    }
}

internal static class Broker
{
    /// <summary>Reads a stream from its start and counts its entries, stopping once nothing more arrives.</summary>
    public static async Task<long> CountStreamEntriesAsync(string uri, string stream)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, 1000, false);
        long count = 0;
        var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, e) =>
        {
            Interlocked.Increment(ref count);
            await channel.BasicAckAsync(e.DeliveryTag, false);
        };
        await channel.BasicConsumeAsync(stream, false, "", false, false, new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        long seen;
        do
        {
            seen = Interlocked.Read(ref count);
            await Task.Delay(1000);
        }
        while (Interlocked.Read(ref count) != seen);

        return seen;
    }

    /// <summary>Messages ready in a queue; 0 when it does not exist.</summary>
    public static async Task<uint> MessageCountAsync(string uri, string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0;
        }
    }

    public static async Task DeleteQueuesAsync(string uri, Topology topology)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        foreach (var queue in new[] { topology.WorkQueue, topology.DeadQueue, topology.OutcomesStream, topology.SuppressionsStream, topology.PausedQueue, topology.TemplatesStream,
            Topology.SnapshotStream(topology.OutcomesStream), Topology.SnapshotStream(topology.SuppressionsStream), topology.RetryQueue(TimeSpan.FromSeconds(2)),
            topology.RetryQueue(TimeSpan.FromSeconds(30)), topology.RetryQueue(TimeSpan.FromMinutes(5)), topology.RetryQueue(TimeSpan.FromMinutes(30)), topology.RetryQueue(TimeSpan.FromHours(2)) })
        {
            await channel.QueueDeleteAsync(queue);
        }
    }
}

/// <summary>Postfix's smtp-source into the sink: this machine's SMTP path with almost nothing spent per mail.</summary>
internal static class Reference
{
    /// <summary>2 KB messages over <paramref name="connections"/> reused sessions, doubling the count until a run lasts 5 s.</summary>
    public static async Task<double> MeasureAsync(int sinkPort, int connections)
    {
        for (var messages = 20_000; ; messages *= 2)
        {
            var clock = Stopwatch.StartNew();
            using var source = Process.Start(new ProcessStartInfo("smtp-source", ["-d", "-s", $"{connections}", "-l", "2048", "-m", $"{messages}",
                "-f", "bench@example.com", "-t", "sink@example.org", $"127.0.0.1:{sinkPort}"]) { RedirectStandardError = true })!;
            await source.WaitForExitAsync();
            var seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"  smtp-source: {messages} messages in {seconds:F1} s");
            if (seconds >= 5 || messages >= 1_000_000)
            {
                return messages / seconds;
            }
        }
    }
}

/// <summary>One campaign posted to a Front and delivered by a Worker: how fast, and at what CPU cost to that Worker.</summary>
/// <param name="MailsPerSecond">First delivery to last, as the Front's ledger saw them.</param>
internal sealed record Delivery(CampaignStatus Status, TimeSpan AcceptedAfter, DateTimeOffset PostedAt, double MailsPerSecond, double WorkerCpuSecondsPer1000)
{
    public static async Task<Delivery> MeasureAsync(FrontClient front, Process worker, string body)
    {
        var cpuBefore = Machine.CpuSeconds(worker.Id);
        var posted = Stopwatch.StartNew();
        var postedAt = DateTimeOffset.UtcNow;
        var id = await front.PostAsync(body);
        var acceptedAfter = posted.Elapsed;
        var status = await front.WaitUntilAsync(id, s => s.IsFinished, TimeSpan.FromMinutes(10));
        var cpu = Machine.CpuSeconds(worker.Id) - cpuBefore;
        var rate = status.Delivered / (status.CompletedAt!.Value - status.FirstDeliveryAt!.Value).TotalSeconds;
        return new Delivery(status, acceptedAfter, postedAt, rate, cpu / (status.Delivered / 1000.0));
    }
}

/// <summary>A fresh RSA-2048 DKIM key in a temporary file, and the Worker settings that sign with it; deleted on dispose.</summary>
internal sealed class DkimKey : IDisposable
{
    private readonly string file = Path.Combine(Path.GetTempPath(), $"bulk-bench-dkim-{Guid.NewGuid():N}.pem");

    public DkimKey()
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        File.WriteAllText(file, rsa.ExportRSAPrivateKeyPem());
    }

    public IReadOnlyDictionary<string, string> WorkerSettings =>
        new Dictionary<string, string> { ["Dkim__Domain"] = "example.com", ["Dkim__Selector"] = "bench", ["Dkim__PrivateKeyFile"] = file };

    public void Dispose() => File.Delete(file);
}
