using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Bulk.Broker.Hosting;
using Bulk.Broker.Outcomes;
using Bulk.Tests.Infrastructure;
using Bulk.Worker;
using Bulk.Worker.Delivery;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Bulk.Tests.Telemetry;

/// <summary>What Prometheus scrapes from the Front (<c>/metrics</c>) and from a Worker (<c>Metrics__Urls</c>) tells the truth about a campaign.</summary>
/// <remarks>
/// The Front and the Worker run in this process, and Bulk's meter is static: each host's meter provider sees the
/// instruments of both hosts. So nothing here passes on someone else's numbers: mails are read by this test's own
/// relay port (<c>server_port</c>), the ledger lag and the dead letters by this test's own queue names, and the
/// campaigns by status come from the one Front's ledger, which holds this test's campaign only (its own topology).
/// The gauges that carry no such label (jobs in flight, unconfirmed mails) are first seen above 0 while a send is held
/// open, then back at 0: a gauge that never moved could not pass.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class MetricsTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const string Key = "metrics-key-0123456789abcdef";

    /// <summary>Holds every send at its start until <see cref="Open"/>: the moment a job is in flight with a mail unconfirmed.</summary>
    private sealed class SendGate : DeliveryObserver
    {
        private readonly ManualResetEventSlim open = new();

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => open.Set();

        public override void Step(DeliveryStep step)
        {
            if (step == DeliveryStep.Send)
            {
                Reached.TrySetResult();
                open.Wait(TimeSpan.FromSeconds(60));
            }
        }
    }

    [Fact]
    public async Task AfterACampaign_TheFrontAndTheWorkerMetrics_AgreeWithItsStatus_AndNeedNoApiKey()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        // Five recipients refused for good (not 5.1.1, which would put them on the suppression list of later tests).
        smtp.RecipientRule = (email, _) => Index(email) >= 15 ? (550, "5.7.1 refused by policy") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={Key}");
        system.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        var suppressed = await system.Http.PostAsJsonAsync("/suppressions", new { emails = new[] { SampleCampaigns.Address(10), SampleCampaigns.Address(11) } });
        Assert.Equal(HttpStatusCode.OK, suppressed.StatusCode);

        var gate = new SendGate();
        var workerMetrics = $"http://127.0.0.1:{TestSmtpServer.FreePort()}";
        // A rate of 5 a second with room for 3: most sends wait for the limit.
        await system.StartWorkerAsync(smtp, services => services.Replace(ServiceDescriptor.Singleton<DeliveryObserver>(gate)),
            $"--Metrics:Urls={workerMetrics}", "--Smtp:MaxMessagesPerSecond=5");
        var relay = $"server_port={smtp.Port}";

        var id = await system.PostAsync(SampleCampaigns.Personal(20));
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var during = await PrometheusText.ScrapeAsync($"{workerMetrics}/metrics");
        gate.Open();

        Assert.True(during.Sum("bulk_jobs_in_flight") >= 1, "a job is in hand while its send is held");
        Assert.True(during.Sum("bulk_mails_unconfirmed") >= 1, "the held send's mail has no confirmed outcome");
        Assert.True(during.Sum("bulk_smtp_connections", relay, "bulk_smtp_connection_state=used") >= 1, "the held send uses a connection");

        var status = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 13, 5, 2), (status.Status, status.Delivered, status.Failed, status.Suppressed));

        // The Worker counts an outcome once the broker confirms it, and acks the job after: both follow the status by moments.
        PrometheusText worker = during;
        // Waited for, then asserted one by one: a timeout says which number is wrong.
        await Record.ExceptionAsync(() => Poll.UntilAsync(async () =>
        {
            worker = await PrometheusText.ScrapeAsync($"{workerMetrics}/metrics");
            return worker.Sum("bulk_mails_total", relay, "bulk_outcome=delivered") == status.Delivered
                && worker.Sum("bulk_jobs_in_flight") == 0 && worker.Sum("bulk_mails_unconfirmed") == 0;
        }, TimeSpan.FromSeconds(10)));
        output.WriteLine(worker.Text);

        Assert.Equal(status.Delivered, worker.Sum("bulk_mails_total", relay, "bulk_outcome=delivered"));
        Assert.Equal(status.Failed, worker.Sum("bulk_mails_total", relay, "bulk_outcome=failed"));
        Assert.Equal(status.Suppressed, worker.Sum("bulk_mails_total", relay, "bulk_outcome=suppressed"));
        Assert.Null(worker.Sum("bulk_mails_total", relay, "bulk_outcome=deferred"));
        Assert.Null(worker.Sum("bulk_mails_total", relay, "bulk_outcome=held"));
        Assert.Equal(0, worker.Sum("bulk_jobs_in_flight"));
        Assert.Equal(0, worker.Sum("bulk_mails_unconfirmed"));

        // One SMTP attempt per mail sent: no 5xx is retried, the suppressed are never sent.
        Assert.Equal(status.Delivered, worker.Sum("bulk_smtp_send_duration_seconds_count", relay, "bulk_smtp_result=delivered"));
        Assert.Equal(status.Failed, worker.Sum("bulk_smtp_send_duration_seconds_count", relay, "bulk_smtp_result=rejected"));
        Assert.Equal(0, worker.Sum("bulk_smtp_connections", relay, "bulk_smtp_connection_state=used"));
        Assert.True(worker.Sum("bulk_smtp_connections", relay, "bulk_smtp_connection_state=idle") >= 1, "the pool keeps its connections");
        Assert.True(worker.Sum("bulk_rate_limit_wait_duration_seconds_count", "bulk_rate_limit=overall") >= 1, "sends past the first few waited for the rate");

        var lag = worker.Sum("bulk_ledger_lag_seconds", $"messaging_destination_name={system.Topology.OutcomesStream}");
        Assert.True(lag is >= 0 and < 10, $"the ledger lag of {system.Topology.OutcomesStream} is {lag}");
        Assert.Contains(worker.Samples, s => s.Name.StartsWith("dotnet_gc_", StringComparison.Ordinal));
        Assert.NotEmpty(worker.Find("process_cpu_time_seconds_total"));

        // The Front: scraped with no API key, although every other call needs one.
        using (var anonymous = new HttpClient { BaseAddress = system.FrontAddress })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/campaigns/{id}")).StatusCode);
        }

        PrometheusText front = null!;
        // Waited for, then asserted one by one: a timeout says which number is wrong.
        await Record.ExceptionAsync(() => Poll.UntilAsync(async () =>
        {
            front = await PrometheusText.ScrapeAsync(new Uri(system.FrontAddress, "/metrics").ToString());
            return front.Sum("bulk_campaigns", $"bulk_campaign_status={status.Status}") == 1
                && front.Find("bulk_dead_letters", $"messaging_destination_name={system.Topology.DeadQueue}").Count == 1;
        }, TimeSpan.FromSeconds(10)));
        output.WriteLine(front.Text);

        Assert.Equal(1, front.Sum("bulk_campaigns", $"bulk_campaign_status={status.Status}"));
        Assert.Equal(1, front.Sum("bulk_campaigns"));
        Assert.Equal(0, front.Sum("bulk_dead_letters", $"messaging_destination_name={system.Topology.DeadQueue}"));
        Assert.True(front.Sum("http_server_request_duration_seconds_count", "http_route=/campaigns/", "http_request_method=POST") >= 1,
            "the POST /campaigns latency histogram counted the POST");
        Assert.NotEmpty(front.Find("process_cpu_time_seconds_total"));
    }

    [Fact]
    public async Task AHeldCampaignAndAParkedJob_ShowInTheMetricsAnOperatorAlertsOn()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        // One recipient that always gets 451 goes through the short test tiers (1 s, 2 s, 4 s) into the parking lot;
        // a second campaign from another sender meets a relay that refuses that sender, and is held.
        smtp.RecipientRule = (email, _) => email == SampleCampaigns.Address(3) ? (451, "4.2.1 mailbox busy") : null;
        smtp.SenderRule = sender => sender == "refused@example.com" ? (550, "5.7.1 sender rejected") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        // Listening on every address (the form a container uses), scraped on loopback.
        var port = TestSmtpServer.FreePort();
        var workerMetrics = $"http://127.0.0.1:{port}";
        await system.StartWorkerAsync(smtp, $"--Metrics:Urls=http://0.0.0.0:{port}");
        var relay = $"server_port={smtp.Port}";

        var parked = await system.PostAsync(SampleCampaigns.Personal(5));
        var held = await system.PostAsync(SampleCampaigns.Personal(5).Replace("news@example.com", "refused@example.com", StringComparison.Ordinal));
        Assert.Equal(CampaignLedger.Statuses.Held,
            (await system.WaitForStatusAsync(held, s => s.Status == CampaignLedger.Statuses.Held, TimeSpan.FromSeconds(30))).Status);
        var finished = await system.WaitForStatusAsync(parked, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 4, 1), (finished.Status, finished.Delivered, finished.Failed));

        PrometheusText front = null!;
        await Record.ExceptionAsync(() => Poll.UntilAsync(async () =>
        {
            front = await PrometheusText.ScrapeAsync(new Uri(system.FrontAddress, "/metrics").ToString());
            return front.Sum("bulk_dead_letters", $"messaging_destination_name={system.Topology.DeadQueue}") == 1;
        }, TimeSpan.FromSeconds(30)));
        output.WriteLine(front.Text);
        var worker = await PrometheusText.ScrapeAsync($"{workerMetrics}/metrics");
        output.WriteLine(worker.Text);

        Assert.Equal(1, front.Sum("bulk_campaigns", $"bulk_campaign_status={CampaignLedger.Statuses.Held}"));
        Assert.Equal(1, front.Sum("bulk_campaigns", $"bulk_campaign_status={CampaignLedger.Statuses.CompletedWithFailures}"));
        Assert.Equal(1, front.Sum("bulk_dead_letters", $"messaging_destination_name={system.Topology.DeadQueue}"));
        Assert.True(worker.Sum("bulk_mails_total", relay, "bulk_outcome=held") >= 1, "the refusal of the sender counted a held mail");
        // The 451 recipient was deferred once per tier, then failed as dead-lettered.
        Assert.Equal(BulkSystem.TestTiers.Length, worker.Sum("bulk_mails_total", relay, "bulk_outcome=deferred"));
        Assert.Equal(1, worker.Sum("bulk_mails_total", relay, "bulk_outcome=failed"));
        Assert.Equal(4, worker.Sum("bulk_mails_total", relay, "bulk_outcome=delivered"));
    }

    [Theory]
    [InlineData("https://0.0.0.0:9464", "Metrics__Urls must be http://host:port URLs")]
    [InlineData("http://0.0.0.0", "'http://0.0.0.0' is not http://host:port")]
    [InlineData("http://127.0.0.1:70000", "'http://127.0.0.1:70000' is not http://host:port")]
    [InlineData("http://127.0.0.1:9464/metrics", "is not http://host:port")]
    [InlineData(";", "names no URL")]
    public async Task AWorkerWithABadMetricsUrl_DoesNotStart_AndSaysWhy(string urls, string expected)
    {
        using var worker = WorkerHost.Create([$"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", "--Unsubscribe:BaseUrl=https://mail.example.com",
            "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", $"--Metrics:Urls={urls}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());
        var line = ConfigurationErrors.OneLine("Bulk.Worker", e.Failures);

        Assert.DoesNotContain('\n', line);
        Assert.Contains("Metrics__Urls", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public async Task AWorkerProcessWithABadMetricsUrl_PrintsOneLine_AndExitsWith2()
    {
        await using var worker = ChildProcess.Start("dotnet", [Repository.WorkerAssembly, .. WorkerBasics, "--Metrics:Urls=http://0.0.0.0"]);

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        var line = Assert.Single(worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("Bulk.Worker: invalid configuration: Metrics__Urls must be http://host:port URLs separated by ';', " +
            "e.g. http://0.0.0.0:9464 (metrics at /metrics) ('http://0.0.0.0' is not http://host:port)", line);
    }

    [Fact]
    public async Task AWorkerProcessWhoseMetricsPortIsTaken_EndsWithALineSayingSo_AndExitsWith2()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Any, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await using var worker = ChildProcess.Start("dotnet", [Repository.WorkerAssembly, .. WorkerBasics, $"--Metrics:Urls=http://0.0.0.0:{port}"]);

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        // The host logs its failure to start first; the last line says what to fix.
        Assert.Equal(2, worker.ExitCode);
        Assert.StartsWith("Bulk.Worker: Metrics__Urls: cannot listen: ", worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
    }

    private static readonly string[] WorkerBasics =
    [
        $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", "--Unsubscribe:BaseUrl=https://mail.example.com",
        "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1",
    ];

    [Theory]
    [InlineData("http://0.0.0.0:9464", "http://+:9464/")]
    [InlineData("http://*:9464/", "http://+:9464/")]
    [InlineData("http://[::]:9464", "http://+:9464/")]
    [InlineData("http://127.0.0.1:9464; http://worker-1:9465", "http://127.0.0.1:9464/|http://worker-1:9465/")]
    public void EveryAddressInMetricsUrls_BecomesTheWildcardHttpListenerAccepts(string urls, string prefixes) =>
        Assert.Equal(prefixes.Split('|'), new Bulk.Worker.Metrics.MetricsOptions { Urls = urls }.ToPrefixes());

    private static int Index(string email) =>
        int.Parse(email.AsSpan("user".Length, 5), System.Globalization.CultureInfo.InvariantCulture);
}
