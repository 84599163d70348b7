using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Bulk.Contracts;

namespace Bulk.Bench;

/// <summary>What telemetry costs: the same campaign through a Front and one Worker with traces and metrics off, as
/// shipped (nothing configured), and on (OTLP export of traces and metrics, both Prometheus endpoints scraped every
/// second), in alternating rounds so that a drift of the machine falls on every mode alike.</summary>
internal static class TelemetryRun
{
    private enum Mode
    {
        Off,
        Default,
        On,
    }

    public static async Task<JsonObject> MeasureAsync(Processes processes, string root, string brokerUri, string prefix, int sinkPort, int connections,
        int recipients, List<(string Name, string Value, string Target)> results)
    {
        using var receiver = OtlpSink.Start();
        var body = Campaign.Build(recipients, personalizedBytes: 2048);
        var samples = new Dictionary<Mode, List<(double Rate, double CpuPer1000)>> { [Mode.Off] = [], [Mode.Default] = [], [Mode.On] = [] };
        var rounds = int.Parse(Environment.GetEnvironmentVariable("BENCH_TELEMETRY_ROUNDS") ?? "2", CultureInfo.InvariantCulture);
        for (var round = 0; round < rounds; round++)
        {
            foreach (var mode in Enum.GetValues<Mode>())
            {
                var runPrefix = $"{prefix}-{mode.ToString().ToLowerInvariant()}{round}";
                var metricsPort = Net.FreePort();
                var settings = mode switch
                {
                    Mode.Off => new Dictionary<string, string> { ["OTEL_SDK_DISABLED"] = "true" },
                    Mode.Default => [],
                    _ => new Dictionary<string, string>
                    {
                        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Address,
                        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
                        ["OTEL_METRIC_EXPORT_INTERVAL"] = "5000",
                    },
                };
                var front = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, runPrefix, settings);
                var workerSettings = new Dictionary<string, string>(settings);
                if (mode == Mode.On)
                {
                    workerSettings["Metrics__Urls"] = $"http://127.0.0.1:{metricsPort}";
                }

                var worker = await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, runPrefix, sinkPort, connections, workerSettings);
                using var scraping = new CancellationTokenSource();
                var scraper = mode == Mode.On
                    ? ScrapeAsync([new Uri(front.Address, "/metrics"), new Uri($"http://127.0.0.1:{metricsPort}/metrics")], scraping.Token)
                    : Task.CompletedTask;

                var cpuBefore = Machine.CpuSeconds(worker.Id);
                var id = await front.PostAsync(body);
                var status = await front.WaitUntilAsync(id, s => s.IsFinished, TimeSpan.FromMinutes(10));
                var cpu = Machine.CpuSeconds(worker.Id) - cpuBefore;
                await scraping.CancelAsync();
                var scrapes = await ((scraper as Task<int>) ?? Task.FromResult(0));
                var rate = status.Delivered / (status.CompletedAt!.Value - status.FirstDeliveryAt!.Value).TotalSeconds;
                samples[mode].Add((rate, cpu / (status.Delivered / 1000.0)));
                Console.WriteLine($"  telemetry {mode.ToString().ToLowerInvariant()}, round {round + 1}: {rate:F0} mails/s, {cpu / (status.Delivered / 1000.0):F3} s Worker CPU per 1,000"
                                  + (mode == Mode.On ? $", {scrapes} scrapes, {receiver.Exports} OTLP exports so far ({receiver.Bytes / 1024} KiB)" : ""));
                await processes.StopAsync(worker);
                await processes.StopAsync(front.Process);
                await Broker.DeleteQueuesAsync(brokerUri, new Topology(runPrefix));
            }
        }

        var json = new JsonObject { ["recipients"] = recipients, ["rounds"] = rounds, ["otlpExports"] = receiver.Exports, ["otlpBytes"] = receiver.Bytes };
        var off = samples[Mode.Off];
        foreach (var (mode, runs) in samples)
        {
            var rate = runs.Average(r => r.Rate);
            var cpu = runs.Average(r => r.CpuPer1000);
            var name = mode switch
            {
                Mode.Off => "telemetry off (OTEL_SDK_DISABLED=true)",
                Mode.Default => "telemetry as shipped (spans made, nothing exported)",
                _ => "telemetry on (OTLP traces+metrics, /metrics scraped every 1 s)",
            };
            results.Add((name, $"{rate:F0} mails/s, {cpu:F3} s Worker CPU per 1,000"
                               + (mode == Mode.Off ? "" : $" ({rate / off.Average(r => r.Rate):P0} of off's rate, {cpu / off.Average(r => r.CpuPer1000) - 1:+0%;-0%;0%} CPU)"), ""));
            json[mode.ToString().ToLowerInvariant()] = new JsonObject
            {
                ["mailsPerSecond"] = Math.Round(rate),
                ["workerCpuSecondsPer1000"] = Math.Round(cpu, 4),
                ["runs"] = new JsonArray([.. runs.Select(r => (JsonNode)new JsonObject { ["mailsPerSecond"] = Math.Round(r.Rate), ["workerCpuSecondsPer1000"] = Math.Round(r.CpuPer1000, 4) })]),
            };
        }

        return json;
    }

    /// <summary>Scrapes every endpoint once a second, as a demanding Prometheus would; returns how many scrapes succeeded.</summary>
    private static async Task<int> ScrapeAsync(Uri[] endpoints, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var scrapes = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var endpoint in endpoints)
            {
                try
                {
                    using var response = await http.GetAsync(endpoint, cancellationToken);
                    await response.Content.ReadAsStringAsync(cancellationToken);
                    scrapes += response.IsSuccessStatusCode ? 1 : 0;
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
                {
                }
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        return scrapes;
    }

    /// <summary>Takes OTLP/HTTP exports on loopback and answers each with an empty success, as a collector would.</summary>
    private sealed class OtlpSink : IDisposable
    {
        private readonly HttpListener listener = new();
        private long exports;
        private long bytes;

        public string Address { get; private init; } = "";

        public long Exports => Interlocked.Read(ref exports);

        public long Bytes => Interlocked.Read(ref bytes);

        public static OtlpSink Start()
        {
            var port = Net.FreePort();
            var sink = new OtlpSink { Address = $"http://127.0.0.1:{port}" };
            sink.listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            sink.listener.Start();
            _ = sink.AcceptAsync();
            return sink;
        }

        private async Task AcceptAsync()
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                using var buffer = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(buffer);
                Interlocked.Increment(ref exports);
                Interlocked.Add(ref bytes, buffer.Length);
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
        }

        public void Dispose() => listener.Close();
    }
}
