using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;

namespace Bulk.Bench;

/// <summary>
/// Each oversized input against a fresh Front (so one input's heap does not hide the next one's): the time to the
/// refusal, how much of the body had been sent by then, and the Front's VmRSS and VmHWM before and after.
/// </summary>
internal static class OversizedInputs
{
    private const double Megabyte = 1024 * 1024;

    /// <summary>An input, and the target for it: the requirement is a refusal "without the Front's memory jumping by more than a few MB".</summary>
    private sealed record Input(string Name, string Key, Func<IEnumerable<ReadOnlyMemory<byte>>> Body, string Target, bool Chunked = false, bool SendBody = true);

    private static readonly Input[] Inputs =
    [
        new("100 MB by Content-Length, body never sent", "contentLength100MB", () => OversizedBodies.Padded(OversizedBodies.HundredMegabytes), "413, peak < +5 MB", SendBody: false),
        new("100 MB chunked", "chunked100MB", () => OversizedBodies.Padded(OversizedBodies.HundredMegabytes), "413, peak < +5 MB", Chunked: true),
        // A 1 MiB text is allowed, so the serializer may hold one whole: its buffer doubles up to 2 MiB on the way.
        new("60 MB text", "text60MB", () => OversizedBodies.WithText(60L * 1024 * 1024), "400, peak < +8 MB"),
        new("1 MB subject", "subject1MB", () => OversizedBodies.WithSubject(1024 * 1024), "400, peak < +5 MB"),
        // The 100,000 recipients allowed are read before the 100,001st is refused: the cost of reading the largest campaign.
        new("a million recipients", "recipients1M", () => OversizedBodies.WithRecipients(1_000_000), "400, peak < +16 MB"),
        new("3 million custom headers", "headers3M", () => OversizedBodies.WithHeaders(3_000_000), "400, peak < +5 MB"),
        new("JSON nested 100,000 deep", "nested100k", () => OversizedBodies.Nested(100_000), "400, peak < +5 MB"),
        new("one recipient with 3 million data values", "data3M", () => OversizedBodies.WithData(3_000_000), "400, peak < +5 MB"),
        new("for scale: 100,000 recipients, the most allowed (accepted)", "recipients100k", () => OversizedBodies.WithRecipients(100_000), "202"),
        new("for scale: 100,000 recipients with 10 data values each, the most data allowed (accepted)", "data1M", () => OversizedBodies.WithRecipientsAndData(100_000, 10), "202"),
    ];

    public static async Task<JsonObject> MeasureAsync(Processes processes, string root, string brokerUri, string prefix, List<(string Name, string Value, string Target)> results)
    {
        var json = new JsonObject();
        for (var i = 0; i < Inputs.Length; i++)
        {
            var input = Inputs[i];
            var topology = new Topology($"{prefix}-big{i}");
            var front = await BulkProcesses.StartFrontAsync(processes, root, brokerUri, topology.Prefix);
            await WarmUpAsync(front.Address);
            var pid = front.Process.Id;
            var peakReset = Machine.ResetPeakRss(pid);
            var rssBefore = Machine.CurrentRssMegabytes(pid);
            var peakBefore = Machine.PeakRssMegabytes(pid);

            var length = OversizedBodies.LengthOf(input.Body());
            var outcome = await RawUpload.PostAsync(front.Address, "/campaigns", input.SendBody ? input.Body() : [],
                input.Chunked ? null : length, TimeSpan.FromMinutes(2));
            var rssAfter = Machine.CurrentRssMegabytes(pid);
            var peakAfter = Machine.PeakRssMegabytes(pid);
            var enqueued = await Broker.MessageCountAsync(brokerUri, topology.WorkQueue);
            await processes.StopAsync(front.Process);
            await Broker.DeleteQueuesAsync(brokerUri, topology);

            // With the peak reset, VmHWM starts at the RSS of the moment; without it (an old kernel) the jump is from the peak so far.
            var jump = peakAfter - (peakReset ? rssBefore : Math.Max(rssBefore, peakBefore));
            var answer = outcome.Status is { } status ? $"{status}{Fields(outcome.Body)}" : outcome.Cut ? "upload cut" : "no answer";
            Console.WriteLine($"  {input.Name}: {answer} after {outcome.ToAnswer.TotalMilliseconds:F0} ms, {outcome.BytesSent / Megabyte:F1} of {length / Megabyte:F1} MB sent; " +
                $"RSS {rssBefore:F0} → {rssAfter:F0} MB, peak {peakAfter:F0} MB (+{jump:F1}); enqueued {enqueued}");
            results.Add(($"oversized: {input.Name}",
                $"{answer} in {outcome.ToAnswer.TotalMilliseconds:F0} ms, {outcome.BytesSent / Megabyte:F1} of {length / Megabyte:F1} MB sent; RSS {rssBefore:F0} → {rssAfter:F0} MB, peak +{jump:F1} MB",
                input.Target));
            json[input.Key] = new JsonObject
            {
                ["status"] = outcome.Status,
                ["fields"] = Fields(outcome.Body).Trim(' ', '(', ')'),
                ["uploadCut"] = outcome.Cut,
                ["msToAnswer"] = Math.Round(outcome.ToAnswer.TotalMilliseconds),
                ["bodyMb"] = Math.Round(length / Megabyte, 1),
                ["sentMbBeforeAnswer"] = Math.Round(outcome.BytesSent / Megabyte, 1),
                ["rssBeforeMb"] = Math.Round(rssBefore, 1),
                ["rssAfterMb"] = Math.Round(rssAfter, 1),
                ["peakBeforeMb"] = Math.Round(peakBefore, 1),
                ["peakAfterMb"] = Math.Round(peakAfter, 1),
                ["peakJumpMb"] = Math.Round(jump, 1),
                ["peakWasReset"] = peakReset,
                ["enqueued"] = enqueued,
            };
        }

        return json;
    }

    /// <summary>The refusals' code paths run once before measuring, so that the figures are the input's, not the JIT's.</summary>
    private static async Task WarmUpAsync(Uri front)
    {
        var invalid = System.Text.Encoding.UTF8.GetBytes("""{"from":"nobody","subject":"s","text":"t","recipients":["a@example.org"]}""");
        for (var i = 0; i < 3; i++)
        {
            await RawUpload.PostAsync(front, "/campaigns", [invalid], invalid.Length, TimeSpan.FromSeconds(10));
            await RawUpload.PostAsync(front, "/campaigns", [], OversizedBodies.HundredMegabytes, TimeSpan.FromSeconds(10));
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
    }

    /// <summary>" (subject)" for a problem+json naming the field subject; "" when the answer names none.</summary>
    private static string Fields(string problem)
    {
        try
        {
            using var document = JsonDocument.Parse(problem);
            return document.RootElement.TryGetProperty("errors", out var errors)
                ? $" ({string.Join(", ", errors.EnumerateObject().Select(e => e.Name))})"
                : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }
}
