// ./bulk bench: measures what oversized inputs cost the Front, this machine's SMTP path with Postfix's smtp-source,
// then the whole of Bulk against the same smtp-sink, and prints one table (also written as JSON). Everything runs on
// 127.0.0.1 and every loop is bounded. BENCH_ONLY=oversized runs the first section alone; BENCH_ONLY=cluster runs
// the SMTP reference and one node against a three-node cluster; BENCH_ONLY=throughput the reference, MailKit alone,
// nodemailer and Bulk with and without DKIM (BENCH_RUNS times). BENCH_ONLY=history (./bulk bench history) runs what a
// long history costs a process at start, and only then: it writes tens of millions of stream entries.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Bench;
using Bulk.Contracts;

if (args is [MailKitAlone.Argument, ..])
{
    return await MailKitAlone.RunAsChildAsync(args);
}

var root = args.Length > 0 ? args[0] : Directory.GetCurrentDirectory();
var brokerUri = Environment.GetEnvironmentVariable("RabbitMq__Uri") ?? "amqp://guest:guest@127.0.0.1:5672/";
var recipients = int.Parse(Environment.GetEnvironmentVariable("BENCH_RECIPIENTS") ?? "50000", CultureInfo.InvariantCulture);
var connections = 4;
var results = new List<(string Name, string Value, string Target)>();
var json = new JsonObject { ["date"] = DateTimeOffset.UtcNow.ToString("u"), ["machine"] = Machine.Describe() };
await using var processes = new Processes();

var only = Environment.GetEnvironmentVariable("BENCH_ONLY");
if (only is not (null or "" or "oversized" or "cluster" or "history" or "telemetry" or "throughput" or "template"))
{
    Console.Error.WriteLine($"BENCH_ONLY={only}: the sections that run alone are 'oversized', 'cluster', 'history', 'telemetry', 'throughput' and 'template'");
    return 2;
}

Console.WriteLine($"Bulk benchmark on {Machine.Describe()}; broker {brokerUri}");

// History: new processes' time to ready and memory on a long outcomes stream and a long suppression list. Not part of
// the default run: at its default sizes it writes 31 M entries and takes well over an hour.
if (only == "history")
{
    Console.WriteLine("History at start-up:");
    json["history"] = await HistoryRun.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", results);
    return await WriteReportAsync();
}

// A 1 MiB template to 100,000 recipients: the Worker's peak memory. Alone only: it sends 100 GB into the sink.
if (only == "template")
{
    Console.WriteLine("A large template:");
    json["largeTemplate"] = await TemplateRun.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", connections, results);
    return await WriteReportAsync();
}

// 0. Oversized inputs, each against a fresh Front on a quiet machine: refused how fast, at what cost in memory.
if (only is null or "" or "oversized")
{
    Console.WriteLine("Oversized inputs:");
    json["oversized"] = await OversizedInputs.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", results);
    if (only == "oversized")
    {
        return await WriteReportAsync();
    }
}

// 1. The reference: smtp-source into smtp-sink, 2 KB messages, 4 reused sessions, for at least 5 seconds.
var sinkPort = Net.FreePort();
processes.Start("smtp-sink", [.. Sink.Privileges(), $"127.0.0.1:{sinkPort}", "256"]);
await Net.WaitForPortAsync(sinkPort);
var referenceRate = await Reference.MeasureAsync(sinkPort, connections);
results.Add(("smtp-source reference (2 KB, 4 sessions)", $"{referenceRate:F0} mails/s", ""));
json["referenceMailsPerSecond"] = Math.Round(referenceRate);

// 1a. Issue #16's rows: MailKit alone, nodemailer's pooled transport, Bulk and Bulk with DKIM, into the same sink.
double mailKitRate = 0;
if (only is null or "" or "throughput")
{
    (json["throughput"], mailKitRate) = await ThroughputRun.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", sinkPort, connections,
        referenceRate, results);
    json["mailKitAloneMailsPerSecond"] = Math.Round(mailKitRate);
    if (only == "throughput")
    {
        return await WriteReportAsync();
    }
}

// 1b. What traces and metrics cost, off against on, in one run into the same sink.
if (only is null or "" or "telemetry")
{
    var telemetryRecipients = int.Parse(Environment.GetEnvironmentVariable("BENCH_TELEMETRY_RECIPIENTS") ?? "20000", CultureInfo.InvariantCulture);
    Console.WriteLine("Telemetry off, as shipped, and on:");
    json["telemetry"] = await TelemetryRun.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", sinkPort, connections, telemetryRecipients, results);
    if (only == "telemetry")
    {
        return await WriteReportAsync();
    }
}

// 1c. One node against three, in the same run and into the same sink.
var clusterRecipients = int.Parse(Environment.GetEnvironmentVariable("BENCH_CLUSTER_RECIPIENTS") ?? "20000", CultureInfo.InvariantCulture);
Console.WriteLine("One node against a three-node cluster:");
json["cluster"] = await ClusterRun.MeasureAsync(processes, root, brokerUri, $"bench-{DateTime.UtcNow:HHmmss}", sinkPort, connections, clusterRecipients, results);
if (only == "cluster")
{
    return await WriteReportAsync();
}

// 2. The real system on the same sink: broker, Front, one Worker with the same number of connections.
var prefix = $"bench-{DateTime.UtcNow:HHmmss}";
var front = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, prefix);
var worker = await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, prefix, sinkPort, connections);
var body = Campaign.Build(recipients, personalizedBytes: 2048);
var delivery = await Delivery.MeasureAsync(front, worker, body);
var (status, acceptedAfter, postedAt, rate) = (delivery.Status, delivery.AcceptedAfter, delivery.PostedAt, delivery.MailsPerSecond);
var outcomeEntries = await Broker.CountStreamEntriesAsync(brokerUri, new Topology(prefix).OutcomesStream);
var jobs = 1 + (int)Math.Ceiling(recipients / 100.0);
var frontRss = Machine.PeakRssMegabytes(front.Process.Id);
var workerRss = Machine.PeakRssMegabytes(worker.Id);

results.Add(($"POST→202, {recipients:N0} recipients", $"{acceptedAfter.TotalMilliseconds:F0} ms", ""));
results.Add(("time to first delivery", $"{(status.FirstDeliveryAt!.Value - postedAt).TotalMilliseconds:F0} ms", ""));
results.Add(("delivery rate, first to last mail", $"{rate:F0} mails/s ({status.Delivered:N0} delivered, {status.Failed} failed)", ""));
results.Add(("ratio to the reference", $"{rate / referenceRate:P0} (to MailKit alone: {rate / mailKitRate:P0})", "≥ 50 %"));
results.Add(("Worker CPU per 1,000 mails", $"{delivery.WorkerCpuSecondsPer1000:F2} s", ""));
results.Add(("peak RSS, Worker", $"{workerRss:F0} MB", "< 250 MB"));
results.Add(("peak RSS, Front", $"{frontRss:F0} MB", ""));
results.Add(("broker messages per mail", $"{(jobs + outcomeEntries) / (double)status.Delivered:F3} ({jobs} jobs + {outcomeEntries} outcome entries)", ""));
json["campaign"] = new JsonObject
{
    ["recipients"] = recipients,
    ["postTo202Ms"] = Math.Round(acceptedAfter.TotalMilliseconds),
    ["firstDeliveryMs"] = Math.Round((status.FirstDeliveryAt!.Value - postedAt).TotalMilliseconds),
    ["mailsPerSecond"] = Math.Round(rate),
    ["ratioToReference"] = Math.Round(rate / referenceRate, 3),
    ["workerCpuSecondsPer1000"] = Math.Round(delivery.WorkerCpuSecondsPer1000, 3),
    ["workerPeakRssMb"] = Math.Round(workerRss),
    ["frontPeakRssMb"] = Math.Round(frontRss),
    ["brokerMessagesPerMail"] = Math.Round((jobs + outcomeEntries) / (double)status.Delivered, 4),
};

// The Front's memory must not grow with mails delivered: its RSS after 1, 3 and 5 campaigns. Growth per mail would
// go on rising with each; heap sizing and buffered POST bodies level off.
var frontRssSeries = new List<double> { Machine.CurrentRssMegabytes(front.Process.Id) };
for (var more = 1; more < 5; more++)
{
    var moreId = await front.PostAsync(body);
    await front.WaitUntilAsync(moreId, s => s.IsFinished, TimeSpan.FromMinutes(10));
    frontRssSeries.Add(Machine.CurrentRssMegabytes(front.Process.Id));
}

results.Add(($"Front RSS after 1, 3, 5 campaigns ({recipients:N0} mails each)", $"{frontRssSeries[0]:F0}, {frontRssSeries[2]:F0}, {frontRssSeries[4]:F0} MB", "no growth per mail"));
json["campaign"]!["frontRssSeriesAfterCampaignsMb"] = new JsonArray([.. frontRssSeries.Select(r => (JsonNode)Math.Round(r))]);
await processes.StopAsync(worker);

// 2b. The same campaign from a Worker that DKIM-signs every message (RSA-2048), against the same Front and sink.
Delivery signed;
using (var dkim = new DkimKey())
{
    var signing = await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, prefix, sinkPort, connections, dkim.WorkerSettings);
    signed = await Delivery.MeasureAsync(front, signing, body);
    await processes.StopAsync(signing);
}

results.Add(("delivery rate with DKIM signing (RSA-2048)", $"{signed.MailsPerSecond:F0} mails/s, {signed.WorkerCpuSecondsPer1000:F2} s Worker CPU per 1,000 ({signed.MailsPerSecond / rate:P0} of unsigned)", ""));
json["campaign"]!["dkimMailsPerSecond"] = Math.Round(signed.MailsPerSecond);
json["campaign"]!["dkimWorkerCpuSecondsPer1000"] = Math.Round(signed.WorkerCpuSecondsPer1000, 3);

// 3. POST→202 latency, median of 5, with no Worker competing for the CPU.
var latencies = new JsonObject();
foreach (var size in new[] { 1_000, 10_000, 100_000 })
{
    var sizeBody = Campaign.Build(size, personalizedBytes: 0);
    var samples = new List<double>();
    for (var i = 0; i < 5; i++)
    {
        var clock = Stopwatch.StartNew();
        var posted2 = await front.PostAsync(sizeBody);
        samples.Add(clock.Elapsed.TotalMilliseconds);
        await front.CancelAsync(posted2);
    }

    var median = samples.Order().ElementAt(samples.Count / 2);
    results.Add(($"POST→202 median of 5, {size:N0} recipients", $"{median:F0} ms", size switch { 10_000 => "< 150 ms", 100_000 => "< 1000 ms", _ => "" }));
    latencies[size.ToString(CultureInfo.InvariantCulture)] = Math.Round(median, 1);
}

json["postTo202MedianMs"] = latencies;
await Broker.DeleteQueuesAsync(brokerUri, new Topology(prefix));

// 4. A slow relay (smtp-sink -w 1: a second per DATA): one Worker against two, each with 8 connections.
var slowPort = Net.FreePort();
processes.Start("smtp-sink", [.. Sink.Privileges(), "-w", "1", $"127.0.0.1:{slowPort}", "256"]);
await Net.WaitForPortAsync(slowPort);
var speeds = new List<double>();
foreach (var workers in new[] { 1, 2 })
{
    var slowPrefix = $"{prefix}-slow{workers}";
    var slowFront = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, slowPrefix);
    var started = new List<Process>();
    for (var w = 0; w < workers; w++)
    {
        started.Add(await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, slowPrefix, slowPort, 8));
    }

    var slowId = await slowFront.PostAsync(Campaign.Build(2000, personalizedBytes: 512));
    await slowFront.WaitUntilAsync(slowId, s => s.Delivered > 0, TimeSpan.FromSeconds(60));
    await Task.Delay(TimeSpan.FromSeconds(3)); // past the ramp-up
    var from = (await slowFront.StatusAsync(slowId)).Delivered;
    var window = TimeSpan.FromSeconds(20);
    await Task.Delay(window);
    var to = (await slowFront.StatusAsync(slowId)).Delivered;
    var slowRate = (to - from) / window.TotalSeconds;
    speeds.Add(slowRate);
    results.Add(($"slow relay (1 s per mail), {workers} Worker(s) × 8 connections", $"{slowRate:F1} mails/s", ""));
    await slowFront.CancelAsync(slowId);
    foreach (var process in started)
    {
        await processes.StopAsync(process);
    }

    await processes.StopAsync(slowFront.Process);
    await Broker.DeleteQueuesAsync(brokerUri, new Topology(slowPrefix));
}

results.Add(("speed-up of 2 Workers on the slow relay", $"{speeds[1] / speeds[0]:F2}×", "≥ 1.8×"));
json["slowRelay"] = new JsonObject
{
    ["oneWorkerMailsPerSecond"] = Math.Round(speeds[0], 2),
    ["twoWorkersMailsPerSecond"] = Math.Round(speeds[1], 2),
    ["speedUp"] = Math.Round(speeds[1] / speeds[0], 2),
};

return await WriteReportAsync();

// The table on the console, the figures as JSON under .run/bench.
async Task<int> WriteReportAsync()
{
    var table = new StringBuilder();
    table.AppendLine(CultureInfo.InvariantCulture, $"| measure | value | target |");
    table.AppendLine("|---|---|---|");
    foreach (var (name, value, target) in results)
    {
        table.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {value} | {target} |");
    }

    Console.WriteLine();
    Console.Write(table);
    var outDir = Path.Combine(root, ".run", "bench");
    Directory.CreateDirectory(outDir);
    var outFile = Path.Combine(outDir, $"bench-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    await File.WriteAllTextAsync(outFile, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"\nwritten to {outFile}");
    return 0;
}
