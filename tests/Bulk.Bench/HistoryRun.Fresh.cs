using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bulk.Contracts;

namespace Bulk.Bench;

/// <summary>
/// Fresh history (issue #25, item 7): what a restart costs when the snapshots are the ones running processes wrote, not
/// seeded. <c>BENCH_HISTORY_FRESH</c> outcome entries (1 M by default) are published as the processes publish them
/// (one JSON entry a message, persistent, confirmed) three times over:
/// <list type="number">
/// <item>with no process running: a new Front then reads them all with no snapshot, which gives the fold's rate
/// (entries read after the snapshot, over the time from its tail's start to its marker coming back);</item>
/// <item>while that Front runs, folding them and writing its snapshots; once it has caught up it is stopped with SIGTERM
/// (a deploy) and a new Front starts;</item>
/// <item>while that one runs; once it has caught up it is killed with SIGKILL and a new Front starts.</item>
/// </list>
/// Each new Front's time from process start to <c>/readyz</c> 200, its VmRSS and VmHWM then, and how many entries it
/// read after its snapshot (its "read to where it stood at start" line) are reported.
/// </summary>
internal static partial class HistoryRun
{
    private static readonly Regex StartupLine = new(@"read to where it stood at start: (\d+) entries after the snapshot covering offsets before (\S+), the last (\d+) ms",
        RegexOptions.Compiled);

    public static async Task<JsonObject> MeasureFreshAsync(Processes processes, string root, string brokerUri, string prefix,
        List<(string Name, string Value, string Target)> results)
    {
        var entries = Sizes("BENCH_HISTORY_FRESH", "1000000").LastOrDefault();
        if (entries == 0)
        {
            return new JsonObject { ["skipped"] = "BENCH_HISTORY_FRESH=0" };
        }

        var run = Settings(brokerUri, $"{prefix}-fresh", Math.Max(2_000_000_000L, entries * 3 * 1000));
        var history = new SyntheticHistory(DateTimeOffset.UtcNow, entries * 3, 0);
        var topology = run.ToTopology();
        Console.WriteLine($"  fresh history: 3 × {entries:N0} outcome entries under {run.Prefix}; snapshots by the running Fronts " +
            $"(History__SnapshotEntries {new Bulk.Broker.Streams.HistoryOptions().SnapshotEntries:N0}), none seeded");
        var json = new JsonObject { ["entriesEachTime"] = entries };
        try
        {
            await DeclareStreamsAsync(run);
            await using var writer = await HistoryWriter.OpenAsync(run.Uri!, SyntheticHistory.Lanes);
            var lanes = Enumerable.Range(0, SyntheticHistory.Lanes).Select(lane => history.OutcomeLane(lane).GetEnumerator()).ToArray();
            var current = new LaneCampaign?[SyntheticHistory.Lanes];
            long written = 0;

            async Task<WriteResult> WriteMoreAsync()
            {
                var from = written;
                written += entries;
                var write = await writer.WriteAsync(topology.OutcomesStream,
                    [.. lanes.Select((lane, i) => Take(lane, SyntheticHistory.LaneShare(written, i) - SyntheticHistory.LaneShare(from, i)))],
                    BulkJson.Default.OutcomeEvent, (lane, e) => current[lane] = LaneCampaign.Next(current[lane], e));
                Console.WriteLine($"  wrote {write.Entries:N0} entries in {write.Elapsed.TotalSeconds:F1} s ({write.EntriesPerSecond:N0}/s)");
                return write;
            }

            // 0. The fold alone, in this process: the entries' JSON read and applied to a ledger, no broker.
            var alone = FoldAlone(new SyntheticHistory(DateTimeOffset.UtcNow, entries, 0), Math.Min(entries, 500_000));
            json["foldAloneEntriesPerSecond"] = Math.Round(alone);
            results.Add(("history, fresh: the fold alone (JSON read and applied in process, no broker)", $"{alone:N0} entries/s", ""));

            // 1. All of it read with no snapshot: the fold's rate; and, to tell where a replay's time goes, the same entries
            // read by a consumer that does nothing with them (the broker and the client alone).
            await WriteMoreAsync();
            // With the tail's credit and acks, with those before #25 (an ack each, 500 of credit), and with more credit.
            var transport = new JsonObject();
            foreach (var (credit, ackEvery) in new (ushort, int)[] { (2000, 500), (500, 1), (8000, 2000) })
            {
                var rate = await ReadOnlyAsync(run.Uri!, topology.OutcomesStream, entries, credit, ackEvery);
                transport[$"credit{credit}AckEvery{ackEvery}"] = Math.Round(rate);
                results.Add(($"history, fresh: the transport alone (the stream read over AMQP, nothing folded), credit {credit}, an ack per {ackEvery}",
                    $"{rate:N0} entries/s", ""));
            }

            json["transportAloneEntriesPerSecond"] = transport;
            var first = await StartFreshFrontAsync(processes, root, run, "no snapshot yet");
            json["noSnapshot"] = first.Start.ToJson();
            var foldRate = first.Start.Entries / first.Start.TailSeconds;
            json["foldEntriesPerSecond"] = Math.Round(foldRate);
            results.Add(("history, fresh: fold rate (a new Front reading entries with no snapshot)",
                $"{foldRate:N0} entries/s ({first.Start.Entries:N0} entries in {first.Start.TailSeconds:F1} s)", "≥ 100,000 entries/s"));

            // 2. More while it runs; then SIGTERM, as a deploy does.
            var live = await WriteMoreAsync();
            json["caughtUpSeconds"] = Math.Round((await CaughtUpAsync(first.Client, current)).TotalSeconds, 1);
            var stopping = Stopwatch.StartNew();
            await processes.StopAsync(first.Client.Process);
            Console.WriteLine($"  SIGTERM: the Front stopped in {stopping.Elapsed.TotalSeconds:F1} s");
            var second = await StartFreshFrontAsync(processes, root, run, "after SIGTERM");
            json["afterSigterm"] = second.Start.ToJson();
            json["sigtermStopSeconds"] = Math.Round(stopping.Elapsed.TotalSeconds, 1);
            results.Add(($"history, fresh: a Front restarted by SIGTERM after {live.Entries:N0} new entries at {live.EntriesPerSecond:N0}/s",
                second.Start.Describe(), "< 10 s, < 250 MB"));

            // 3. More while the new one runs; then SIGKILL: it leaves only the snapshots written on the way.
            live = await WriteMoreAsync();
            await CaughtUpAsync(second.Client, current);
            second.Client.Process.Kill(entireProcessTree: true);
            await second.Client.Process.WaitForExitAsync();
            await processes.StopAsync(second.Client.Process);
            var third = await StartFreshFrontAsync(processes, root, run, "after SIGKILL");
            json["afterSigkill"] = third.Start.ToJson();
            await processes.StopAsync(third.Client.Process);
            results.Add(($"history, fresh: a Front restarted by SIGKILL after {live.Entries:N0} new entries at {live.EntriesPerSecond:N0}/s",
                third.Start.Describe(), "< 10 s, < 250 MB"));
            return json;
        }
        finally
        {
            await Broker.DeleteQueuesAsync(brokerUri, topology);
        }
    }

    /// <summary>Entries a second that <see cref="CampaignLedger"/> folds from their JSON, as a tail does after the broker.</summary>
    private static double FoldAlone(SyntheticHistory history, long count)
    {
        var bodies = history.Outcomes(count).Select(e => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(e, BulkJson.Default.OutcomeEvent)).ToList();
        var ledger = new Bulk.Broker.Outcomes.CampaignLedger();
        var clock = Stopwatch.StartNew();
        foreach (var body in bodies)
        {
            ledger.Apply(System.Text.Json.JsonSerializer.Deserialize(body, BulkJson.Default.OutcomeEvent)!);
        }

        var whole = clock.Elapsed.TotalSeconds;
        var rate = bodies.Count / whole;
        // Where it goes: the JSON read alone, then the ledger alone (on a new ledger, from entries read beforehand).
        clock.Restart();
        var read = bodies.Select(body => System.Text.Json.JsonSerializer.Deserialize(body, BulkJson.Default.OutcomeEvent)!).ToList();
        var json = clock.Elapsed.TotalSeconds;
        var again = new Bulk.Broker.Outcomes.CampaignLedger();
        clock.Restart();
        foreach (var e in read)
        {
            again.Apply(e);
        }

        Console.WriteLine($"  the fold alone: {bodies.Count:N0} entries in {whole:F2} s ({rate:N0}/s); of which the JSON read " +
            $"{bodies.Count / json:N0}/s, the ledger {bodies.Count / clock.Elapsed.TotalSeconds:N0}/s");
        return rate;
    }

    /// <summary>Entries a second a consumer gets from the stream's first entry when it only counts them, with
    /// <paramref name="credit"/> and a multiple ack every <paramref name="ackEvery"/> deliveries.</summary>
    private static async Task<double> ReadOnlyAsync(string uri, string stream, long count, ushort credit, int ackEvery)
    {
        await using var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, credit, false);
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long seen = 0;
        var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            if (++seen >= count)
            {
                all.TrySetResult();
            }

            if (delivered.DeliveryTag % (ulong)ackEvery == 0 && !all.Task.IsCompleted)
            {
                await channel.BasicAckAsync(delivered.DeliveryTag, multiple: true);
            }
        };
        var clock = Stopwatch.StartNew();
        await channel.BasicConsumeAsync(stream, false, "", false, false, new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        await all.Task.WaitAsync(TimeSpan.FromMinutes(5));
        var rate = count / clock.Elapsed.TotalSeconds;
        Console.WriteLine($"  the transport alone, credit {credit}, an ack per {ackEvery}: {count:N0} entries in {clock.Elapsed.TotalSeconds:F1} s ({rate:N0}/s)");
        return rate;
    }

    /// <summary>Waits (at most 10 min) until the Front reports the last campaign of each lane as written.</summary>
    private static async Task<TimeSpan> CaughtUpAsync(FrontClient client, LaneCampaign?[] current)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(10))
        {
            var agree = 0;
            foreach (var expected in current.Where(c => c is not null))
            {
                try
                {
                    var status = await client.StatusAsync(expected!.Id);
                    agree += status.Delivered == expected.Delivered && status.Failed == expected.Failed ? 1 : 0;
                }
                catch (HttpRequestException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
                {
                    // Its tail has not reached the campaign's first entry yet.
                }
            }

            if (agree == current.Count(c => c is not null))
            {
                Console.WriteLine($"  the running Front caught up {clock.Elapsed.TotalSeconds:F1} s after the last write");
                return clock.Elapsed;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException("the running Front did not catch up with the stream within 10 min");
    }

    /// <summary>Starts a Front, waits for <c>/readyz</c> 200 (at most 5 min), and leaves it running.</summary>
    private static async Task<(FreshStart Start, FrontClient Client)> StartFreshFrontAsync(Processes processes, string root, Bulk.Broker.RabbitMqOptions run, string what)
    {
        var said = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
        var port = Net.FreePort();
        var settings = new Dictionary<string, string>(ProcessSettings(run))
        {
            // The one line at Information that says how much was read after the snapshot.
            ["Logging__LogLevel__Bulk.Broker.Outcomes.OutcomeLog"] = "Information",
        };
        var clock = Stopwatch.StartNew();
        var process = BulkProcesses.LaunchFront(processes, root, run.Uri!, run.Prefix, port, settings, line =>
        {
            if (StartupLine.Match(line) is { Success: true } match)
            {
                said.TrySetResult(match);
            }
        });
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        while (clock.Elapsed < TimeSpan.FromMinutes(5) && !process.HasExited)
        {
            try
            {
                using var ready = await http.GetAsync("/readyz");
                if (ready.IsSuccessStatusCode)
                {
                    var elapsed = clock.Elapsed;
                    var line = await said.Task.WaitAsync(TimeSpan.FromSeconds(30));
                    var start = new FreshStart(what, elapsed, Machine.CurrentRssMegabytes(process.Id), Machine.PeakRssMegabytes(process.Id),
                        long.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture), long.TryParse(line.Groups[2].Value, CultureInfo.InvariantCulture, out var covered) ? covered : null,
                        long.Parse(line.Groups[3].Value, CultureInfo.InvariantCulture) / 1000.0);
                    Console.WriteLine($"  Front {what}: {start.Describe()}");
                    return (start, new FrontClient(process, http));
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet, or too busy reading to answer in time.
            }

            await Task.Delay(100);
        }

        await processes.StopAsync(process);
        throw new TimeoutException($"the Front {what} was not ready within 5 min");
    }

    private sealed record FreshStart(string What, TimeSpan Ready, double RssMb, double PeakMb, long Entries, long? SnapshotOffset, double TailSeconds)
    {
        public double Load { get; } = Machine.LoadAverage();

        public string Describe() => $"ready in {Ready.TotalSeconds:F1} s, RSS {RssMb:F0} MB (peak {PeakMb:F0}); " +
            (SnapshotOffset is { } offset ? $"snapshot covering offsets before {offset:N0}, then " : "no snapshot, ") +
            $"{Entries:N0} entries read in {TailSeconds:F1} s; load average {Load:F1}";

        public JsonObject ToJson() => new()
        {
            ["readySeconds"] = Math.Round(Ready.TotalSeconds, 2),
            ["rssMb"] = Math.Round(RssMb),
            ["peakRssMb"] = Math.Round(PeakMb),
            ["snapshotOffset"] = SnapshotOffset,
            ["entriesReadAfterSnapshot"] = Entries,
            ["tailSeconds"] = Math.Round(TailSeconds, 2),
            ["loadAverageAtReady"] = Load,
        };
    }
}
