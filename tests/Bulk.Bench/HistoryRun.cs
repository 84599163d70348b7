using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Streams;
using Bulk.Broker.Suppressions;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Bulk.Bench;

/// <summary>
/// What a long history costs a process at start (issue #14): synthetic history (<see cref="SyntheticHistory"/>) is
/// written straight into the outcomes stream, size after size (1 M, 10 M, 30 M entries by default, cumulative), and
/// into the suppressions stream of another prefix (1 M addresses, outcomes empty); after each size a new Front and
/// then a new Worker start, and their time from process start to ready and their memory then are measured.
/// </summary>
/// <remarks>
/// Ready is, for the Front, <c>/readyz</c> answering 200 (both streams read up to where they stood at its start); for
/// the Worker, its "Consuming {queue}" line (both streams read to now through a marker, then the work queue consumed).
/// A Worker whose marker does not come back within its 60 s (DeliveryConsumer's ReadToNowTimeout) starts its consumer
/// over with back-off, logging a warning each time, and is ready on the first try after its tail has caught up: past
/// a minute of replay its figure carries up to that back-off (30 s at most), and the row counts the warnings.
/// Every start is bounded (<c>BENCH_HISTORY_TIMEOUT_SECONDS</c>, 900); once both kinds of process time out, larger
/// sizes are not written. <c>BENCH_HISTORY_SIZES</c> and <c>BENCH_HISTORY_SUPPRESSIONS</c> (comma-separated, cumulative)
/// choose the sizes. Whether a snapshot is used is up to <see cref="SeedSnapshotAsync"/>.
/// </remarks>
internal static partial class HistoryRun
{
    private const double Megabyte = 1024 * 1024;

    public static async Task<JsonObject> MeasureAsync(Processes processes, string root, string brokerUri, string prefix,
        List<(string Name, string Value, string Target)> results)
    {
        var sizes = Sizes("BENCH_HISTORY_SIZES", "1000000,10000000,30000000");
        var addresses = Sizes("BENCH_HISTORY_SUPPRESSIONS", "1000000");
        var bound = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("BENCH_HISTORY_TIMEOUT_SECONDS") ?? "900", CultureInfo.InvariantCulture));
        var history = new SyntheticHistory(DateTimeOffset.UtcNow, sizes.LastOrDefault(), addresses.LastOrDefault());
        // Retention must not cut the history: room for 1 KB an entry (they are about 150 B), kept for the 30 days written.
        var outcomesRun = Settings(brokerUri, $"{prefix}-hist", Math.Max(2_000_000_000L, sizes.LastOrDefault() * 1000));
        var suppressionsRun = Settings(brokerUri, $"{prefix}-hsup", 2_000_000_000L);
        Console.WriteLine($"  outcome sizes {string.Join(", ", sizes.Select(s => s.ToString("N0", CultureInfo.InvariantCulture)))} under {outcomesRun.Prefix}; " +
            $"suppressed addresses {string.Join(", ", addresses.Select(s => s.ToString("N0", CultureInfo.InvariantCulture)))} under {suppressionsRun.Prefix}; " +
            $"each start bounded at {bound.TotalSeconds:F0} s");

        var rows = new List<Row>();
        try
        {
            var fresh = await MeasureFreshAsync(processes, root, brokerUri, prefix, results);
            var outcomes = await OutcomeSizesAsync(processes, root, outcomesRun, history, sizes, bound, rows);
            var suppressions = await SuppressionSizesAsync(processes, root, suppressionsRun, history, addresses, bound, rows);
            PrintTable(rows);
            foreach (var row in rows)
            {
                results.Add(row.ForReport());
            }

            return new JsonObject
            {
                ["entryTimesSpanDays"] = SyntheticHistory.Span.TotalDays,
                ["recipientsPerCampaign"] = SyntheticHistory.Recipients,
                ["startBoundSeconds"] = bound.TotalSeconds,
                ["fresh"] = fresh,
                ["outcomes"] = outcomes,
                ["suppressions"] = suppressions,
            };
        }
        finally
        {
            foreach (var run in new[] { outcomesRun, suppressionsRun })
            {
                await Broker.DeleteQueuesAsync(brokerUri, run.ToTopology());
            }
        }
    }

    /// <summary>
    /// Writes the snapshot the new processes of this size start from, as the running system would have: the same
    /// entries the stream holds, folded by the real <see cref="CampaignLedger"/> / <see cref="SuppressionList"/>, written
    /// by the real <see cref="SnapshotStore"/> with the offset of the stream's end. (A running system writes one every
    /// History__SnapshotSeconds; folding 30 M entries through a process first would only make the bench slower.)
    /// </summary>
    private static async Task<string?> SeedSnapshotAsync(HistorySeed seed, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string stream;
        byte[] data;
        if (seed.OutcomeEntries > 0)
        {
            var ledger = new CampaignLedger();
            foreach (var e in seed.Outcomes())
            {
                ledger.Apply(e);
            }

            stream = seed.Topology.OutcomesStream;
            data = SnapshotStore.Encode(seed.StreamBytes, ledger.WriteTo);
        }
        else
        {
            var list = new SuppressionList();
            foreach (var e in seed.Suppressions())
            {
                list.Apply(e);
            }

            stream = seed.Topology.SuppressionsStream;
            data = SnapshotStore.Encode(seed.StreamBytes, list.WriteTo);
        }

        var folded = clock.Elapsed.TotalSeconds;
        await using var connections = new BrokerConnections(Options.Create(seed.Settings), new BrokerClientName("bench-snapshot"),
            NullLogger<BrokerConnections>.Instance);
        var end = await EndOffsetAsync(seed.Settings.Uri!, stream, seed.OutcomeEntries > 0
            ? JsonSerializer.SerializeToUtf8Bytes(OutcomeEvent.Marker("bench-end"), BulkJson.Default.OutcomeEvent)
            : JsonSerializer.SerializeToUtf8Bytes(SuppressionEvent.Marker("bench-end"), BulkJson.Default.SuppressionEvent), cancellationToken);
        var store = new SnapshotStore(connections, Topology.SnapshotStream(stream),
            seed.Topology.SnapshotStreamArguments(new HistoryOptions().SnapshotStreamMaxBytes), seed.Settings.MaxMessageBytes);
        var parts = await store.WriteAsync(data, end, cancellationToken);
        return $"{data.Length / 1e6:F1} MB in {parts} parts at offset {end:N0} (folded in {folded:F0} s)";
    }

    /// <summary>The offset after the stream's last entry: a marker is appended, and read back from the stream's last chunk.</summary>
    private static async Task<long> EndOffsetAsync(string uri, string stream, byte[] marker, CancellationToken cancellationToken)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync(cancellationToken);
        var id = Guid.NewGuid().ToString("N");
        await using (var publish = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), cancellationToken))
        {
            await publish.BasicPublishAsync("", stream, mandatory: true,
                new BasicProperties { MessageId = id, Persistent = true }, marker, cancellationToken);
        }

        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.BasicQosAsync(0, 100, false, cancellationToken);
        await using var acks = new AckGate(channel);
        var found = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (delivered.BasicProperties.MessageId == id && delivered.BasicProperties.Headers?["x-stream-offset"] is long at)
            {
                found.TrySetResult(at + 1);
            }

            await acks.AckAsync(delivered.DeliveryTag);
        };
        await channel.BasicConsumeAsync(stream, false, "", false, false, new Dictionary<string, object?> { ["x-stream-offset"] = "last" }, consumer, cancellationToken);
        return await found.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    private static async Task<JsonArray> OutcomeSizesAsync(Processes processes, string root, RabbitMqOptions run, SyntheticHistory history,
        IReadOnlyList<long> sizes, TimeSpan bound, List<Row> rows)
    {
        var json = new JsonArray();
        if (sizes.Count == 0)
        {
            return json;
        }

        var topology = run.ToTopology();
        await DeclareStreamsAsync(run);
        await using var writer = await HistoryWriter.OpenAsync(run.Uri!, SyntheticHistory.Lanes);
        var lanes = Enumerable.Range(0, SyntheticHistory.Lanes).Select(lane => history.OutcomeLane(lane).GetEnumerator()).ToArray();
        var current = new LaneCampaign?[SyntheticHistory.Lanes];
        long written = 0;
        long streamBytes = 0;
        var timedOut = (Front: false, Worker: false);
        foreach (var size in sizes)
        {
            if (timedOut is (true, true))
            {
                Console.WriteLine($"  {size:N0} outcome entries: not written, both processes timed out at a smaller size");
                json.Add(new JsonObject { ["entries"] = size, ["skipped"] = "both processes timed out at a smaller size" });
                continue;
            }

            var from = written;
            Console.WriteLine($"  writing outcome entries {from:N0} to {size:N0}");
            var write = await writer.WriteAsync(topology.OutcomesStream,
                [.. lanes.Select((lane, i) => Take(lane, SyntheticHistory.LaneShare(size, i) - SyntheticHistory.LaneShare(from, i)))],
                BulkJson.Default.OutcomeEvent, (lane, e) => current[lane] = LaneCampaign.Next(current[lane], e));
            written = size;
            Console.WriteLine($"  {write.Entries:N0} entries ({write.Bytes / Megabyte:F0} MB, {write.Bytes / (double)write.Entries:F0} B each) " +
                $"in {write.Elapsed.TotalSeconds:F1} s: {write.EntriesPerSecond:N0} entries/s");
            EstimateRest(sizes, size, write);

            streamBytes += write.Bytes;
            var seed = new HistorySeed(run, history, written, [], streamBytes);
            var snapshot = await SeedSnapshotAsync(seed, CancellationToken.None);
            var front = await MeasureFrontAsync(processes, root, run, bound, timedOut.Front, async client =>
            {
                var agree = 0;
                var differences = new List<string>();
                foreach (var expected in current.Where(c => c is not null))
                {
                    var status = await client.StatusAsync(expected!.Id);
                    if (status.Delivered == expected.Delivered && status.Failed == expected.Failed)
                    {
                        agree++;
                    }
                    else
                    {
                        differences.Add($"{expected.Id}: {status.Delivered}/{status.Failed} against {expected.Delivered}/{expected.Failed} written");
                    }
                }

                return differences.Count == 0 ? $"the last campaign of each lane as written ({agree} of {agree})" : $"MISMATCH {string.Join("; ", differences)}";
            });
            var worker = await MeasureWorkerAsync(processes, root, run, bound, timedOut.Worker);
            timedOut = (timedOut.Front || front.TimedOut, timedOut.Worker || worker.TimedOut);
            var row = new Row($"{size:N0} outcome entries", write, snapshot, front, worker, size >= 30_000_000 ? "< 10 s, < 200 MB" : "");
            rows.Add(row);
            json.Add(row.ToJson("entries", size));
        }

        return json;
    }

    private static async Task<JsonArray> SuppressionSizesAsync(Processes processes, string root, RabbitMqOptions run, SyntheticHistory history,
        IReadOnlyList<long> sizes, TimeSpan bound, List<Row> rows)
    {
        var json = new JsonArray();
        if (sizes.Count == 0)
        {
            return json;
        }

        var topology = run.ToTopology();
        await DeclareStreamsAsync(run);
        await using var writer = await HistoryWriter.OpenAsync(run.Uri!, SyntheticHistory.Lanes);
        var ranges = new List<(long From, long To)>();
        var removed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        long written = 0;
        long streamBytes = 0;
        var timedOut = (Front: false, Worker: false);
        foreach (var size in sizes)
        {
            if (timedOut is (true, true))
            {
                json.Add(new JsonObject { ["addresses"] = size, ["skipped"] = "both processes timed out at a smaller size" });
                continue;
            }

            var from = written;
            Console.WriteLine($"  writing suppressed addresses {from:N0} to {size:N0}");
            var lanes = SyntheticHistory.SuppressionRanges(from, size, SyntheticHistory.Lanes);
            ranges.AddRange(lanes);
            var write = await writer.WriteAsync(topology.SuppressionsStream, [.. lanes.Select(r => history.Suppressions(r.From, r.To))],
                BulkJson.Default.SuppressionEvent, (_, e) =>
                {
                    if (e.Type == SuppressionType.Unsuppressed)
                    {
                        lock (removed)
                        {
                            removed.Add(e.Email);
                        }
                    }
                });
            written = size;
            Console.WriteLine($"  {write.Entries:N0} entries ({write.Bytes / Megabyte:F0} MB) in {write.Elapsed.TotalSeconds:F1} s: " +
                $"{write.EntriesPerSecond:N0} entries/s, {(size - from) / write.Elapsed.TotalSeconds:N0} addresses/s");

            streamBytes += write.Bytes;
            var seed = new HistorySeed(run, history, 0, [.. ranges], streamBytes);
            var snapshot = await SeedSnapshotAsync(seed, CancellationToken.None);
            var listed = size - removed.Count;
            var front = await MeasureFrontAsync(processes, root, run, bound, timedOut.Front, async client =>
            {
                using var http = new HttpClient { BaseAddress = client.Address, Timeout = TimeSpan.FromMinutes(2) };
                var page = await http.GetFromJsonAsync<JsonObject>("/suppressions?limit=1");
                var count = (long?)page?["count"];
                return count == listed ? $"{count:N0} addresses listed, as written" : $"MISMATCH {count:N0} addresses listed, {listed:N0} written";
            });
            var worker = await MeasureWorkerAsync(processes, root, run, bound, timedOut.Worker);
            timedOut = (timedOut.Front || front.TimedOut, timedOut.Worker || worker.TimedOut);
            var row = new Row($"{size:N0} suppressed addresses ({listed:N0} still listed)", write, snapshot, front, worker,
                size >= 1_000_000 ? "< 5 s, < 150 MB" : "");
            rows.Add(row);
            json.Add(row.ToJson("addresses", size));
        }

        return json;
    }

    /// <summary>Starts a Front and waits for <c>/readyz</c> to answer 200; then checks what it read, and stops it.</summary>
    private static async Task<Start> MeasureFrontAsync(Processes processes, string root, RabbitMqOptions run, TimeSpan bound, bool skip,
        Func<FrontClient, Task<string>> check)
    {
        if (skip)
        {
            return Start.Skipped;
        }

        var lines = new RecentLines();
        var port = Net.FreePort();
        var clock = Stopwatch.StartNew();
        var process = BulkProcesses.LaunchFront(processes, root, run.Uri!, run.Prefix, port, ProcessSettings(run), lines.Add);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            while (clock.Elapsed < bound)
            {
                if (process.HasExited)
                {
                    return Start.Failed($"exited ({process.ExitCode}) after {clock.Elapsed.TotalSeconds:F1} s: {lines}");
                }

                try
                {
                    using var ready = await http.GetAsync("/readyz");
                    if (ready.IsSuccessStatusCode)
                    {
                        var start = new Start(clock.Elapsed, Machine.CurrentRssMegabytes(process.Id), Machine.PeakRssMegabytes(process.Id), null, lines.Warnings, lines.LastWarning);
                        Console.WriteLine($"  Front ready in {start.Ready!.Value.TotalSeconds:F1} s, RSS {start.RssMb:F0} MB (peak {start.PeakMb:F0})");
                        var read = await check(new FrontClient(process, http));
                        Console.WriteLine($"  Front's fold: {read}");
                        return start with { Check = read };
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // Not listening yet, or too busy reading to answer in time.
                }

                await Task.Delay(100);
            }

            Console.WriteLine($"  Front: timed out after {bound.TotalSeconds:F0} s");
            return Start.TimedOutAfter(bound, Machine.CurrentRssMegabytes(process.Id), Machine.PeakRssMegabytes(process.Id));
        }
        finally
        {
            await processes.StopAsync(process);
            http.Dispose();
        }
    }

    /// <summary>Starts a Worker and waits for it to log that it consumes the work queue (it has read both streams to now); then stops it.</summary>
    private static async Task<Start> MeasureWorkerAsync(Processes processes, string root, RabbitMqOptions run, TimeSpan bound, bool skip)
    {
        if (skip)
        {
            return Start.Skipped;
        }

        var consuming = $"Consuming {run.ToTopology().WorkQueue} ";
        var lines = new RecentLines();
        var ready = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = Stopwatch.StartNew();
        var settings = new Dictionary<string, string>(ProcessSettings(run))
        {
            // Its one line at Information that says it is ready; everything else stays at Warning.
            ["Logging__LogLevel__Bulk.Worker.Delivery.DeliveryConsumer"] = "Information",
        };
        var process = BulkProcesses.LaunchWorker(processes, root, run.Uri!, run.Prefix, Net.FreePort(), 4, settings, line =>
        {
            if (line.Contains(consuming, StringComparison.Ordinal))
            {
                ready.TrySetResult(clock.Elapsed);
            }
            else
            {
                lines.Add(line);
            }
        });
        try
        {
            var exited = process.WaitForExitAsync();
            var first = await Task.WhenAny(ready.Task, exited, Task.Delay(bound));
            if (first == ready.Task)
            {
                var start = new Start(ready.Task.Result, Machine.CurrentRssMegabytes(process.Id), Machine.PeakRssMegabytes(process.Id), null, lines.Warnings, lines.LastWarning);
                Console.WriteLine($"  Worker ready in {start.Ready!.Value.TotalSeconds:F1} s, RSS {start.RssMb:F0} MB (peak {start.PeakMb:F0})" +
                    (start.Warnings > 0 ? $"; {start.Warnings} warning(s) on the way, the last: {start.LastWarning}" : ""));
                return start;
            }

            if (first == exited)
            {
                return Start.Failed($"exited ({process.ExitCode}) after {clock.Elapsed.TotalSeconds:F1} s: {lines}");
            }

            Console.WriteLine($"  Worker: timed out after {bound.TotalSeconds:F0} s{(lines.ToString() is { Length: > 0 } said ? $"; its last lines: {said}" : "")}");
            return Start.TimedOutAfter(bound, Machine.CurrentRssMegabytes(process.Id), Machine.PeakRssMegabytes(process.Id));
        }
        finally
        {
            await processes.StopAsync(process);
        }
    }

    /// <summary>The settings the bench's processes and streams share: the stream's retention must be declared alike everywhere.</summary>
    private static RabbitMqOptions Settings(string brokerUri, string prefix, long outcomesMaxBytes) => new()
    {
        Uri = brokerUri,
        Prefix = prefix,
        OutcomesMaxBytes = outcomesMaxBytes,
        OutcomesMaxAge = $"{SyntheticHistory.Span.TotalDays:F0}D",
    };

    private static Dictionary<string, string> ProcessSettings(RabbitMqOptions run) => new()
    {
        ["RabbitMq__OutcomesMaxBytes"] = run.OutcomesMaxBytes.ToString(CultureInfo.InvariantCulture),
        ["RabbitMq__OutcomesMaxAge"] = run.OutcomesMaxAge,
        // One line per log entry, so that what a process says can be matched and quoted.
        ["Logging__Console__FormatterName"] = "simple",
        ["Logging__Console__FormatterOptions__SingleLine"] = "true",
    };

    /// <summary>Both streams, declared as the processes declare them (<see cref="TopologyDeclarations"/>), before anything is written.</summary>
    private static async Task DeclareStreamsAsync(RabbitMqOptions run)
    {
        var topology = run.ToTopology();
        await using var connection = await new ConnectionFactory { Uri = run.ToBrokerUri() }.CreateConnectionAsync();
        await connection.DeclareAsync(topology.OutcomesStream, topology.OutcomesStreamArguments(run.OutcomesMaxAge, run.OutcomesMaxBytes),
            NullLogger.Instance, CancellationToken.None);
        await connection.DeclareAsync(topology.SuppressionsStream, topology.SuppressionsStreamArguments, NullLogger.Instance, CancellationToken.None);
    }

    private static IEnumerable<T> Take<T>(IEnumerator<T> source, long count)
    {
        for (long i = 0; i < count && source.MoveNext(); i++)
        {
            yield return source.Current;
        }
    }

    /// <summary>At this size's rate, how long the sizes still to come will take to write.</summary>
    private static void EstimateRest(IReadOnlyList<long> sizes, long size, WriteResult write)
    {
        var rest = sizes[^1] - size;
        if (rest > 0)
        {
            Console.WriteLine($"  at that rate the remaining {rest:N0} entries take about {rest / write.EntriesPerSecond / 60:F0} min to write " +
                $"({rest * (write.Bytes / (double)write.Entries) / 1e9:F1} GB)");
        }
    }

    private static List<long> Sizes(string variable, string fallback) =>
        [.. (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } set ? set : fallback)
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => long.Parse(s, NumberStyles.AllowThousands, CultureInfo.InvariantCulture)).Where(s => s > 0).Order()];

    private static void PrintTable(List<Row> rows)
    {
        var table = new StringBuilder();
        table.AppendLine("| history | added, at | snapshot | Front ready | Front RSS (peak) | Worker ready | Worker RSS (peak) |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            table.AppendLine(CultureInfo.InvariantCulture,
                $"| {row.Name} | {row.Write.Entries:N0} entries at {row.Write.EntriesPerSecond:N0}/s | {row.Snapshot ?? "none"} | {row.Front.Time} | {row.Front.Memory} | {row.Worker.Time} | {row.Worker.Memory} |");
        }

        Console.WriteLine();
        Console.Write(table);
    }

    /// <summary>One size: what was written, and how the new Front and Worker started on it.</summary>
    private sealed record Row(string Name, WriteResult Write, string? Snapshot, Start Front, Start Worker, string Target)
    {
        public (string, string, string) ForReport() => ($"history: {Name}, {(Snapshot is null ? "no snapshot" : $"snapshot {Snapshot}")}",
            $"written at {Write.EntriesPerSecond:N0} entries/s; Front ready {Front.Time}, RSS {Front.Memory}; Worker ready {Worker.Time}, RSS {Worker.Memory}",
            Target);

        public JsonObject ToJson(string sizeName, long size) => new()
        {
            [sizeName] = size,
            ["entriesAdded"] = Write.Entries,
            ["bytesAdded"] = Write.Bytes,
            ["writeSeconds"] = Math.Round(Write.Elapsed.TotalSeconds, 1),
            ["writeEntriesPerSecond"] = Math.Round(Write.EntriesPerSecond),
            ["snapshot"] = Snapshot,
            ["front"] = Front.ToJson(),
            ["worker"] = Worker.ToJson(),
        };
    }

    /// <summary>A process's start: time to ready and its VmRSS and VmHWM then, or why there is none.</summary>
    private sealed record Start(TimeSpan? Ready, double RssMb, double PeakMb, string? Failure, int Warnings, string? LastWarning = null, string? Check = null)
    {
        /// <summary>The machine's load average when the process became ready (or gave up): others' work slows a start too.</summary>
        public double Load { get; init; } = Machine.LoadAverage();

        public static readonly Start Skipped = new(null, 0, 0, "skipped: timed out at a smaller size", 0);

        public bool TimedOut => Failure?.StartsWith("timed out", StringComparison.Ordinal) == true || this == Skipped;

        public string Time => Ready is { } ready ? $"{ready.TotalSeconds:F1} s" : Failure!;

        public string Memory => Ready is null && RssMb == 0 ? "–" : $"{RssMb:F0} MB ({PeakMb:F0})";

        public static Start Failed(string why) => new(null, 0, 0, why, 0);

        public static Start TimedOutAfter(TimeSpan bound, double rssMb, double peakMb) => new(null, rssMb, peakMb, $"timed out after {bound.TotalSeconds:F0} s", 0);

        public JsonObject ToJson() => new()
        {
            ["readySeconds"] = Ready is { } ready ? Math.Round(ready.TotalSeconds, 2) : null,
            ["rssMb"] = Math.Round(RssMb),
            ["peakRssMb"] = Math.Round(PeakMb),
            ["failure"] = Failure,
            ["loadAverageAtReady"] = Load,
            ["warningsBeforeReady"] = Warnings,
            ["lastWarning"] = LastWarning,
            ["check"] = Check,
        };
    }

    /// <summary>The last few lines a process wrote, for a failure's message, and how many were warnings.</summary>
    private sealed class RecentLines
    {
        private readonly Queue<string> lines = new();
        private int warnings;
        private string? lastWarning;

        public int Warnings
        {
            get
            {
                lock (lines)
                {
                    return warnings;
                }
            }
        }

        public string? LastWarning
        {
            get
            {
                lock (lines)
                {
                    return lastWarning;
                }
            }
        }

        public void Add(string line)
        {
            lock (lines)
            {
                if (line.StartsWith("warn:", StringComparison.Ordinal))
                {
                    warnings++;
                    lastWarning = line;
                }

                lines.Enqueue(line);
                if (lines.Count > 6)
                {
                    lines.Dequeue();
                }
            }
        }

        public override string ToString()
        {
            lock (lines)
            {
                return string.Join(" | ", lines.Select(l => l.Trim()));
            }
        }
    }

    /// <summary>A lane's campaign in progress as written: what a new process must report for it.</summary>
    private sealed record LaneCampaign(string Id, int Delivered, int Failed)
    {
        public static LaneCampaign? Next(LaneCampaign? current, OutcomeEvent e) => e.Type switch
        {
            OutcomeType.Accepted => new LaneCampaign(e.CampaignId, 0, 0),
            OutcomeType.Progress when current is not null => current with
            {
                Delivered = current.Delivered + (e.Delivered?.Count ?? 0),
                Failed = current.Failed + (e.Failed?.Count ?? 0),
            },
            _ => current,
        };
    }
}

/// <summary>
/// What the snapshot seam is given: the settings the new processes start with (broker, prefix, retention) and the
/// synthetic history written under them so far, as the very entries that were published.
/// </summary>
/// <remarks>
/// The streams hold these entries and, from the second size on, the markers the earlier Fronts and Workers wrote
/// (which carry no fact). Outcome entries come lane by lane in turn; on the broker the lanes interleave as they were
/// published, which changes no campaign's fold.
/// </remarks>
/// <param name="OutcomeEntries">How many outcome entries are written: <see cref="Outcomes"/> yields them.</param>
/// <param name="SuppressionRanges">The address ranges written, in the order written: <see cref="Suppressions"/> yields their entries.</param>
/// <param name="StreamBytes">The bytes of entries written to the stream so far.</param>
internal sealed record HistorySeed(RabbitMqOptions Settings, SyntheticHistory History, long OutcomeEntries,
    IReadOnlyList<(long From, long To)> SuppressionRanges, long StreamBytes)
{
    public Topology Topology => Settings.ToTopology();

    public IEnumerable<OutcomeEvent> Outcomes() => History.Outcomes(OutcomeEntries);

    public IEnumerable<SuppressionEvent> Suppressions() => SuppressionRanges.SelectMany(r => History.Suppressions(r.From, r.To));
}
