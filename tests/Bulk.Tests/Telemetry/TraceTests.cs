using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Bulk.Broker.Telemetry;
using Bulk.Tests.Infrastructure;
using OpenTelemetry.Trace;

namespace Bulk.Tests.Telemetry;

/// <summary>One trace per campaign, from the POST through the broker to every mail; logs that follow it by its trace id.</summary>
[Collection(BrokerCollection.Name)]
public sealed class TraceTests(BrokerFixture broker)
{
    [Fact]
    public async Task ACampaign_IsOneTrace_FromItsPostThroughTheSplitToEachJob_WithEveryMailAnEventNotASpan()
    {
        // The Front and the Worker are separate hosts in this process: each has its own tracer provider and exporter.
        // Both listen to the one "Bulk" source, so each list also holds the other's Bulk spans; only the Front's has
        // the HTTP server span. The context between them travels in the AMQP headers either way (nothing else links
        // a Worker's span to the Front's).
        var frontSpans = new List<Activity>();
        var workerSpans = new List<Activity>();
        await using var smtp = await TestSmtpServer.StartAsync();
        // One recipient is refused, and the relay quotes its address, as relays do.
        smtp.RecipientRule = (address, _) => address == SampleCampaigns.Address(3) ? (550, $"5.1.1 <{address}>: Recipient address rejected") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker, s => s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(frontSpans)));
        await system.StartWorkerAsync(smtp, s => s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(workerSpans)),
            "--Delivery:RecipientsPerJob=10");

        var id = await system.PostAsync(SampleCampaigns.Personal(25));
        var status = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((24, 1), (status.Delivered, status.Failed));
        var jobs = await Poll.UntilAsync(() => Of(workerSpans, id).Where(a => a.DisplayName == "deliver job").ToList(), j => j.Count == 3, TimeSpan.FromSeconds(20));

        var server = Assert.Single(Of(frontSpans, id), a => a.Kind == ActivityKind.Server);
        Assert.Equal("POST /campaigns/", server.DisplayName);
        var trace = server.TraceId;
        var publish = Assert.Single(Of(frontSpans, id), a => a.Kind == ActivityKind.Producer);
        Assert.Equal((trace, server.SpanId), (publish.TraceId, publish.ParentSpanId));
        Assert.Equal(system.Topology.WorkQueue, publish.GetTagItem("messaging.destination.name"));
        var split = Assert.Single(Of(workerSpans, id), a => a.DisplayName == "split campaign");
        Assert.Equal((trace, publish.SpanId, ActivityKind.Consumer), (split.TraceId, split.ParentSpanId, split.Kind));
        Assert.All(jobs, job => Assert.Equal((trace, split.SpanId), (job.TraceId, job.ParentSpanId)));

        // Each mail is an event of its job's span, by index, and no span is made per mail: the whole campaign is six spans.
        var mails = jobs.SelectMany(j => j.Events).Where(e => e.Name == "mail").ToList();
        static int Index(ActivityEvent mail) => (int)mail.Tags.Single(t => t.Key == "bulk.recipient.index").Value!;
        Assert.Equal(Enumerable.Range(0, 25), mails.Select(Index).Order());
        Assert.All(mails, m => Assert.Equal(Index(m) == 3 ? "failed" : "delivered", m.Tags.Single(t => t.Key == "bulk.mail.outcome").Value));
        // The relay's reply is there, without the address it quoted: traces carry no addresses.
        Assert.StartsWith("550 5.1.1 <<address>>", (string)mails.Single(m => Index(m) == 3).Tags.Single(t => t.Key == "bulk.mail.reply").Value!, StringComparison.Ordinal);
        Assert.DoesNotContain(mails.SelectMany(m => m.Tags), t => t.Value?.ToString()?.Contains('@') == true);
        Assert.Equal((24, 1), (jobs.Sum(j => (int)j.GetTagItem("bulk.job.delivered")!), jobs.Sum(j => (int)j.GetTagItem("bulk.job.failed")!)));
        var inTrace = frontSpans.Concat(workerSpans).Where(a => a.TraceId == trace).DistinctBy(a => a.SpanId).ToList();
        Assert.Equal(6, inTrace.Count);
    }

    [Fact]
    public async Task RetriesAndAReplayOfDeadLetters_StayInTheCampaignsTrace()
    {
        var spans = new List<Activity>();
        await using var smtp = await TestSmtpServer.StartAsync();
        // Refused for now (451) through every delay tier, then parked; accepted once the operator replays it.
        var refusing = true;
        smtp.RecipientRule = (_, _) => Volatile.Read(ref refusing) ? (451, "4.3.0 try again later") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker, s => s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans)));
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync(SampleCampaigns.Personal(1));
        await system.WaitForStatusAsync(id, s => s.Failed == 1, TimeSpan.FromSeconds(60));
        Volatile.Write(ref refusing, false);
        using var replay = await system.Http.PostAsync("/dead-letters/replay", null);
        Assert.True(replay.IsSuccessStatusCode);
        await system.WaitForStatusAsync(id, s => s.Delivered == 1, TimeSpan.FromSeconds(60));

        // The first try and one per delay tier (1 s, 2 s, 4 s), then the replay: five jobs, one trace, the server span's.
        var jobs = await Poll.UntilAsync(() => Of(spans, id).Where(a => a.DisplayName == "deliver job").ToList(), j => j.Count == 5, TimeSpan.FromSeconds(20));
        var trace = Assert.Single(Of(spans, id), a => a.Kind == ActivityKind.Server && a.DisplayName == "POST /campaigns/").TraceId;
        Assert.All(jobs, job => Assert.Equal(trace, job.TraceId));
        Assert.Equal(["deferred", "deferred", "deferred", "dead_lettered", "delivered"],
            jobs.OrderBy(j => j.StartTimeUtc).Select(j => (string)j.Events.Single(e => e.Name == "mail").Tags.Single(t => t.Key == "bulk.mail.outcome").Value!));
    }

    [Fact]
    public async Task ACampaign_IsFollowedAcrossARealFrontAndWorker_ByOneTraceId_InTheirJsonLogsAndTheirOtlpExports()
    {
        await using var otlp = await OtlpReceiver.StartAsync();
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = BulkSystem.On(broker.Uri, broker);
        string[] telemetry =
        [
            "--Logging:Console:FormatterName=json", "--Logging:LogLevel:Bulk=Information",
            $"--OTEL_EXPORTER_OTLP_ENDPOINT={otlp.Address}", "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "--OTEL_BSP_SCHEDULE_DELAY=200",
        ];
        var front = await system.StartFrontProcessAsync(telemetry);
        var worker = await system.StartWorkerProcessAsync(smtp.Port,
            [.. telemetry, $"--Smtp:Username={TestSmtpServer.Username}", $"--Smtp:Password={TestSmtpServer.Password}"]);

        var id = await system.PostAsync(SampleCampaigns.Personal(5));
        await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));

        var accepted = await LogLineAsync(front, "Bulk.Front.Campaigns.CampaignIntake", id, "accepted");
        var traceId = accepted.GetProperty("State").GetProperty("TraceId").GetString()!;
        Assert.Matches("^[0-9a-f]{32}$", traceId);
        AssertScopes(accepted, id, traceId);
        var started = await LogLineAsync(worker, "Bulk.Worker.Delivery.CampaignTrail", id, "started");
        Assert.Equal(traceId, started.GetProperty("State").GetProperty("TraceId").GetString());
        AssertScopes(started, id, traceId);
        var ended = await LogLineAsync(worker, "Bulk.Worker.Delivery.CampaignTrail", id, "ended");
        Assert.Equal("completed", ended.GetProperty("State").GetProperty("Status").GetString());
        Assert.Equal(traceId, ended.GetProperty("State").GetProperty("TraceId").GetString());

        // Both processes exported spans of that trace over OTLP, each under its own service name; the Worker's carry
        // the delivered mails' events.
        var traceBytes = Convert.FromHexString(traceId);
        await Poll.UntilAsync(() => otlp.Received("traces", traceBytes, "bulk-front"u8.ToArray(), "POST /campaigns/"u8.ToArray())
                                    && otlp.Received("traces", traceBytes, "bulk-worker"u8.ToArray(), "bulk.mail.outcome"u8.ToArray(), "delivered"u8.ToArray()),
            TimeSpan.FromSeconds(30));
    }

    private static IEnumerable<Activity> Of(List<Activity> spans, string campaignId) =>
        spans.ToArray().Where(a => a.GetTagItem(BulkTelemetry.CampaignIdTag) as string == campaignId);

    /// <summary>The JSON log line of <paramref name="category"/> about <paramref name="campaignId"/> whose message has <paramref name="word"/>.</summary>
    private static async Task<JsonElement> LogLineAsync(ChildProcess process, string category, string campaignId, string word)
    {
        JsonElement? found = null;
        await Poll.UntilAsync(() =>
        {
            found = process.Output.Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(l => l.GetProperty("Category").GetString() == category && l.GetProperty("Message").GetString()!.Contains(word, StringComparison.Ordinal)
                            && l.GetProperty("State").TryGetProperty("CampaignId", out var c) && c.GetString() == campaignId)
                .Select(l => (JsonElement?)l).FirstOrDefault();
            return found is not null;
        }, TimeSpan.FromSeconds(30)).ContinueWith(t => t.IsFaulted ? throw new TimeoutException($"no '{word}' line of {category}:\n{process.Output}") : t, TaskScheduler.Default).Unwrap();
        return found!.Value;
    }

    /// <summary>The line's scopes carry the trace id (and a span id) and the campaign's id.</summary>
    private static void AssertScopes(JsonElement line, string campaignId, string traceId)
    {
        var scopes = line.GetProperty("Scopes").EnumerateArray().ToList();
        Assert.Contains(scopes, s => s.TryGetProperty("TraceId", out var t) && t.GetString() == traceId
                                     && s.TryGetProperty("SpanId", out var span) && span.GetString()!.Length == 16);
        Assert.Contains(scopes, s => s.TryGetProperty("CampaignId", out var c) && c.GetString() == campaignId);
    }
}
