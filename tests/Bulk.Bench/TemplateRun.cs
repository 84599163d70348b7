using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Bulk.Contracts;

namespace Bulk.Bench;

/// <summary>A large template must not multiply in the Worker: one campaign with a 1 MiB html to many recipients,
/// through a Front and one Worker into its own smtp-sink, with both processes' peak RSS.</summary>
internal static class TemplateRun
{
    public static async Task<JsonObject> MeasureAsync(Processes processes, string root, string brokerUri, string prefix, int connections,
        List<(string Name, string Value, string Target)> results)
    {
        var recipients = int.Parse(Environment.GetEnvironmentVariable("BENCH_TEMPLATE_RECIPIENTS") ?? "100000", CultureInfo.InvariantCulture);
        var templateBytes = int.Parse(Environment.GetEnvironmentVariable("BENCH_TEMPLATE_BYTES") ?? "1048576", CultureInfo.InvariantCulture);
        var sinkPort = Net.FreePort();
        processes.Start("smtp-sink", [.. Sink.Privileges(), $"127.0.0.1:{sinkPort}", "256"]);
        await Net.WaitForPortAsync(sinkPort);

        // Room for the template and the recipients: the defaults take a 1 MiB template, and the bench wants exactly that.
        var front = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, prefix,
            new Dictionary<string, string> { ["Front__MaxTemplateBytes"] = $"{templateBytes + 1024}" });
        var worker = await BulkProcesses.StartWorkerAsync(processes, root, brokerUri, prefix, sinkPort, connections);
        var body = Build(recipients, templateBytes);
        var posted = Stopwatch.StartNew();
        var id = await front.PostAsync(body);
        var accepted = posted.Elapsed;
        var status = await front.WaitUntilAsync(id, s => s.IsFinished, TimeSpan.FromMinutes(40));
        var delivering = (status.CompletedAt!.Value - status.FirstDeliveryAt!.Value).TotalSeconds;
        var workerRss = Machine.PeakRssMegabytes(worker.Id);
        var frontRss = Machine.PeakRssMegabytes(front.Process.Id);
        await processes.StopAsync(worker);
        await processes.StopAsync(front.Process);
        await Broker.DeleteQueuesAsync(brokerUri, new Topology(prefix));

        var label = $"{recipients:N0} recipients, {templateBytes / 1024.0 / 1024.0:F1} MiB html";
        results.Add(($"large template: {label}, POST→202", $"{accepted.TotalMilliseconds:F0} ms", ""));
        results.Add(($"large template: delivered", $"{status.Delivered:N0} in {delivering:F0} s ({status.Delivered / delivering:F0} mails/s, {status.Failed} failed)", ""));
        results.Add(($"large template: peak RSS, Worker", $"{workerRss:F0} MB", "< 300 MB"));
        results.Add(($"large template: peak RSS, Front", $"{frontRss:F0} MB", ""));
        return new JsonObject
        {
            ["recipients"] = recipients,
            ["templateBytes"] = templateBytes,
            ["postTo202Ms"] = Math.Round(accepted.TotalMilliseconds),
            ["delivered"] = status.Delivered,
            ["failed"] = status.Failed,
            ["mailsPerSecond"] = Math.Round(status.Delivered / delivering),
            ["workerPeakRssMb"] = Math.Round(workerRss),
            ["frontPeakRssMb"] = Math.Round(frontRss),
        };
    }

    /// <summary>Every recipient gets the same long html with their name at the top.</summary>
    private static string Build(int count, int templateBytes)
    {
        var html = new StringBuilder("<p>Hello {{ name }},</p>\n");
        while (html.Length < templateBytes - 80)
        {
            html.Append("<p>Bulk sends one message to thousands of recipients, and this one is long.</p>\n");
        }

        html.Append('\n', templateBytes - html.Length);
        var recipients = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            recipients.Add(new JsonObject { ["email"] = $"r{i}@example.org", ["data"] = new JsonObject { ["name"] = $"Reader {i}" } });
        }

        return new JsonObject
        {
            ["from"] = "Bench <bench@example.com>",
            ["subject"] = "A long letter for {{ name }}",
            ["html"] = html.ToString(),
            ["recipients"] = recipients,
        }.ToJsonString();
    }
}
