using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Contracts;

namespace Bulk.Bench;

/// <summary>Issue #16's throughput rows, in one run into one sink with the same connection count: smtp-source as the
/// reference, MailKit alone, nodemailer's pooled transport, then Bulk (a Front and one Worker) unsigned and DKIM-signed,
/// with Bulk's ratios to the two libraries and the Worker's CPU per 1,000 mails. BENCH_RUNS repeats the whole run.</summary>
/// <remarks>Every row sends the same personalized ~2 KB text after an unmeasured warm-up of its own, so that none of
/// them is measured while its JIT (or V8's) is still compiling.</remarks>
internal static class ThroughputRun
{
    /// <summary>Mails each row sends unmeasured first (BENCH_WARMUP). A fresh Worker still JIT-compiles for tens of thousands of mails after these.</summary>
    private static readonly int Warmup = int.Parse(Environment.GetEnvironmentVariable("BENCH_WARMUP") ?? "2000", CultureInfo.InvariantCulture);

    public static async Task<(JsonObject Json, double MailKitRate)> MeasureAsync(Processes processes, string root, string brokerUri, string prefix,
        int sinkPort, int connections, double firstReferenceRate, List<(string Name, string Value, string Target)> results)
    {
        var recipients = int.Parse(Environment.GetEnvironmentVariable("BENCH_THROUGHPUT_RECIPIENTS") ?? "20000", CultureInfo.InvariantCulture);
        var runs = int.Parse(Environment.GetEnvironmentVariable("BENCH_RUNS") ?? "1", CultureInfo.InvariantCulture);
        var node = await NodemailerRow.PrepareAsync(root);
        var body = Campaign.Build(recipients, personalizedBytes: 2048);
        var warmupBody = Campaign.Build(Warmup, personalizedBytes: 2048);
        using var dkim = new DkimKey();
        var samples = new List<Sample>();
        for (var run = 0; run < runs; run++)
        {
            Console.WriteLine($"Throughput, run {run + 1} of {runs} ({recipients:N0} mails a row, {connections} connections):");
            var reference = run == 0 ? firstReferenceRate : await Reference.MeasureAsync(sinkPort, connections);
            var (mailKit, mailKitCpu) = await MailKitAlone.MeasureInProcessOfItsOwnAsync(processes, sinkPort, connections, recipients, Warmup);
            Console.WriteLine($"  MailKit alone: {mailKit:F0} mails/s, {mailKitCpu:F3} s CPU per 1,000");
            NodemailerRow.Result? peer = node is null ? null : await node.MeasureAsync(sinkPort, connections, recipients, Warmup);
            if (peer is { } p)
            {
                Console.WriteLine($"  nodemailer pooled: {p.MailsPerSecond:F0} mails/s, {p.CpuSecondsPer1000:F3} s CPU per 1,000");
            }

            var runPrefix = $"{prefix}-t{run}";
            var front = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, runPrefix);
            var bulk = await DeliverAsync(null);
            var signed = await DeliverAsync(dkim.WorkerSettings);
            await processes.StopAsync(front.Process);
            await Broker.DeleteQueuesAsync(brokerUri, new Topology(runPrefix));
            var sample = new Sample(reference, mailKit, mailKitCpu, peer, bulk, signed);
            samples.Add(sample);
            Console.WriteLine($"  Bulk: {bulk.MailsPerSecond:F0} mails/s, {bulk.WorkerCpuSecondsPer1000:F3} s Worker CPU per 1,000; with DKIM {signed.MailsPerSecond:F0} mails/s, {signed.WorkerCpuSecondsPer1000:F3} s");
            Console.WriteLine($"  run {run + 1}: Bulk / MailKit alone {sample.ToMailKit:P0} (CPU per mail {sample.CpuToMailKit:F2}×), Bulk / nodemailer {Times(sample.ToPeer)}; with DKIM {sample.SignedToMailKit:P0}, {Times(sample.SignedToPeer)} (load average {Machine.LoadAverage():F1})");

            async Task<Delivery> DeliverAsync(IReadOnlyDictionary<string, string>? settings)
            {
                var worker = await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, runPrefix, sinkPort, connections, settings);
                await Delivery.MeasureAsync(front, worker, warmupBody);
                var delivery = await Delivery.MeasureAsync(front, worker, body);
                await processes.StopAsync(worker);
                return delivery;
            }
        }

        var label = runs == 1 ? "" : $", {runs} runs: ";
        foreach (var (sample, run) in samples.Select((s, i) => (s, i)))
        {
            var tag = runs == 1 ? "" : $"run {run + 1}: ";
            if (runs > 1)
            {
                results.Add(($"{tag}smtp-source reference (2 KB, {connections} sessions)", $"{sample.Reference:F0} mails/s", ""));
            }

            results.Add(($"{tag}MailKit alone (prebuilt loop, no broker), {connections} connections", $"{sample.MailKit:F0} mails/s, {sample.MailKitCpu:F2} s CPU per 1,000", ""));
            results.Add(($"{tag}nodemailer pooled transport, {connections} connections",
                sample.Peer is { } p ? $"{p.MailsPerSecond:F0} mails/s, {p.CpuSecondsPer1000:F2} s CPU per 1,000" : "not measured (node or npm missing)", ""));
            results.Add(($"{tag}Bulk (Front + 1 Worker, {connections} connections), {recipients:N0} personalized mails",
                $"{sample.Bulk.MailsPerSecond:F0} mails/s: {sample.ToMailKit:P0} of MailKit alone, {Times(sample.ToPeer)} nodemailer", "≥ 90 %, ≥ 1.2×"));
            results.Add(($"{tag}Worker CPU per 1,000 mails", $"{sample.Bulk.WorkerCpuSecondsPer1000:F3} s ({sample.CpuToMailKit:F2}× MailKit alone's)", "≤ 0.25 s"));
            results.Add(($"{tag}Bulk with DKIM (RSA-2048)",
                $"{sample.Signed.MailsPerSecond:F0} mails/s: {sample.SignedToMailKit:P0} of MailKit alone, {Times(sample.SignedToPeer)} nodemailer; {sample.Signed.WorkerCpuSecondsPer1000:F3} s Worker CPU per 1,000", "≤ 0.6 s"));
        }

        if (runs > 1)
        {
            results.Add(($"Bulk / MailKit alone{label}range", Range(samples.Select(s => s.ToMailKit), "P0"), "≥ 90 %"));
            results.Add(($"Bulk / nodemailer{label}range", samples.All(s => s.ToPeer is not null) ? Range(samples.Select(s => s.ToPeer!.Value), "F2") + "×" : "not measured", "≥ 1.2×"));
            results.Add(($"Worker CPU per 1,000{label}range", Range(samples.Select(s => s.Bulk.WorkerCpuSecondsPer1000), "F3") + " s", "≤ 0.25 s"));
            results.Add(($"Worker CPU per mail / MailKit alone's{label}range", Range(samples.Select(s => s.CpuToMailKit), "F2") + "×", ""));
            results.Add(($"Worker CPU per 1,000 with DKIM{label}range", Range(samples.Select(s => s.Signed.WorkerCpuSecondsPer1000), "F3") + " s", "≤ 0.6 s"));
            results.Add(($"Bulk with DKIM / MailKit alone{label}range", Range(samples.Select(s => s.SignedToMailKit), "P0"), ""));
        }

        var json = new JsonObject
        {
            ["recipients"] = recipients,
            ["connections"] = connections,
            ["warmup"] = Warmup,
            ["runs"] = new JsonArray([.. samples.Select(s => (JsonNode)s.ToJson())]),
        };
        return (json, samples[0].MailKit);
    }

    private static string Times(double? ratio) => ratio is { } r ? $"{r:F2}×" : "n/a";

    private static string Range(IEnumerable<double> values, string format)
    {
        var list = values.ToList();
        return $"{list.Min().ToString(format, CultureInfo.InvariantCulture)}–{list.Max().ToString(format, CultureInfo.InvariantCulture)}";
    }

    /// <summary>One run's rows.</summary>
    private sealed record Sample(double Reference, double MailKit, double MailKitCpu, NodemailerRow.Result? Peer, Delivery Bulk, Delivery Signed)
    {
        public double ToMailKit => Bulk.MailsPerSecond / MailKit;

        /// <summary>The Worker's CPU per mail over MailKit alone's in the same run, minutes apart on the same machine.</summary>
        public double CpuToMailKit => Bulk.WorkerCpuSecondsPer1000 / MailKitCpu;

        public double? ToPeer => Peer is { } p ? Bulk.MailsPerSecond / p.MailsPerSecond : null;

        public double SignedToMailKit => Signed.MailsPerSecond / MailKit;

        public double? SignedToPeer => Peer is { } p ? Signed.MailsPerSecond / p.MailsPerSecond : null;

        public JsonObject ToJson() => new()
        {
            ["referenceMailsPerSecond"] = Math.Round(Reference),
            ["mailKitAloneMailsPerSecond"] = Math.Round(MailKit),
            ["mailKitAloneCpuSecondsPer1000"] = Math.Round(MailKitCpu, 3),
            ["nodemailerMailsPerSecond"] = Peer is { } p ? Math.Round(p.MailsPerSecond) : null,
            ["nodemailerCpuSecondsPer1000"] = Peer is { } q ? Math.Round(q.CpuSecondsPer1000, 3) : null,
            ["bulkMailsPerSecond"] = Math.Round(Bulk.MailsPerSecond),
            ["bulkWorkerCpuSecondsPer1000"] = Math.Round(Bulk.WorkerCpuSecondsPer1000, 3),
            ["bulkDkimMailsPerSecond"] = Math.Round(Signed.MailsPerSecond),
            ["bulkDkimWorkerCpuSecondsPer1000"] = Math.Round(Signed.WorkerCpuSecondsPer1000, 3),
            ["bulkToMailKitAlone"] = Math.Round(ToMailKit, 3),
            ["bulkWorkerCpuToMailKitAlone"] = Math.Round(CpuToMailKit, 3),
            ["bulkToNodemailer"] = ToPeer is { } r ? Math.Round(r, 3) : null,
        };
    }
}

/// <summary>The peer a user would pick: tests/Bulk.Bench/node/pooled.js, nodemailer's pooled transport in Node.</summary>
internal sealed class NodemailerRow(string directory)
{
    public readonly record struct Result(double MailsPerSecond, double CpuSecondsPer1000);

    /// <summary>Installs the locked nodemailer (npm ci) when node_modules is missing; null, with a note, when Node cannot run it.</summary>
    public static async Task<NodemailerRow?> PrepareAsync(string root)
    {
        var directory = Path.Combine(root, "tests", "Bulk.Bench", "node");
        if (!Directory.Exists(Path.Combine(directory, "node_modules", "nodemailer")))
        {
            Console.WriteLine("  npm ci (nodemailer, for the peer row)");
            try
            {
                var (code, _, all) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], directory);
                if (code != 0)
                {
                    Console.WriteLine($"  npm ci failed ({code}), no nodemailer row: {all.Trim()}");
                    return null;
                }
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                Console.WriteLine($"  npm cannot run ({e.Message}), no nodemailer row");
                return null;
            }
        }

        return new NodemailerRow(directory);
    }

    public async Task<Result> MeasureAsync(int port, int connections, int messages, int warmup)
    {
        var (code, output, all) = await RunAsync("node", ["pooled.js", $"{port}", $"{connections}", $"{messages}", $"{warmup}", "2048"], directory);
        if (code != 0)
        {
            throw new InvalidOperationException($"node pooled.js exited with {code}: {all}");
        }

        var line = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        var seconds = line.GetProperty("seconds").GetDouble();
        return new Result(messages / seconds, line.GetProperty("cpuSeconds").GetDouble() / (messages / 1000.0));
    }

    /// <returns>The exit code, stdout, and stdout with stderr after it for a message.</returns>
    private static async Task<(int Code, string Output, string All)> RunAsync(string file, string[] arguments, string directory)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stdout + await stderr);
    }
}
