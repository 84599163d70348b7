using System.Net.Http.Json;
using System.Text.Json;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Front;
using Bulk.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bulk.Tests.Infrastructure;

/// <summary>A Front on a real loopback port and any number of Workers (in this process or as real processes), on their own queues.</summary>
public sealed class BulkSystem : IAsyncDisposable
{
    /// <summary>The unsubscribe secret every Front and Worker of the tests shares.</summary>
    public const string UnsubscribeSecret = "test-unsubscribe-secret-0123456789abcdef";

    /// <summary>Short delay tiers, so that tests see a recipient go through them.</summary>
    public static readonly string[] TestTiers = ["1s", "2s", "4s"];

    private readonly BrokerFixture? broker;
    private readonly string brokerUri;
    private readonly bool onTheTestBroker;
    private readonly List<IHost> workers = [];
    private readonly List<ChildProcess> processes = [];
    private readonly List<WebApplication> moreFronts = [];
    private string[] frontSettings = [];
    private Action<IServiceCollection>? frontConfigure;
    private ILoggerProvider? frontLogs;
    private WebApplication? front;

    private BulkSystem(BrokerFixture? broker, string brokerUri, bool onTheTestBroker = false)
    {
        this.broker = broker;
        this.brokerUri = brokerUri;
        this.onTheTestBroker = broker is not null && (onTheTestBroker || brokerUri == broker.Uri);
        Topology = new Topology($"test-{Guid.NewGuid():N}"[..17]);
    }

    public Topology Topology { get; }

    /// <summary>The Front's services, e.g. its ledger, to look at what it has read.</summary>
    public IServiceProvider FrontServices => front!.Services;

    public Uri FrontAddress { get; private set; } = null!;

    public HttpClient Http { get; private set; } = new();

    public static Task<BulkSystem> StartFrontAsync(BrokerFixture broker, params string[] settings) =>
        StartFrontOnAsync(broker, broker.Uri, settings);

    /// <summary>Starts the Front with every Warning-or-worse entry of its log also given to <paramref name="logs"/> (the console stays at Error).</summary>
    public static async Task<BulkSystem> StartFrontAsync(BrokerFixture broker, ILoggerProvider logs, params string[] settings)
    {
        var system = new BulkSystem(broker, broker.Uri) { frontLogs = logs, frontSettings = [.. WarningsToLogs, .. settings] };
        await system.StartFrontAsync();
        return system;
    }

    private static readonly string[] WarningsToLogs =
    [
        "--Logging:LogLevel:Default=Warning",
        "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
        "--Logging:LogLevel:Bulk=Warning",
        "--Logging:Console:LogLevel:Default=Error",
    ];

    /// <summary>Starts the Front with some of its services replaced or added by <paramref name="configure"/> (a test's exporter, say).</summary>
    public static async Task<BulkSystem> StartFrontAsync(BrokerFixture broker, Action<IServiceCollection> configure, params string[] settings)
    {
        var system = new BulkSystem(broker, broker.Uri) { frontSettings = settings, frontConfigure = configure };
        await system.StartFrontAsync();
        return system;
    }

    /// <summary>Starts the Front as a real process (the built Bulk.Front.dll) on a free port, and points <see cref="Http"/> at it.</summary>
    public async Task<ChildProcess> StartFrontProcessAsync(params string[] settings)
    {
        var process = ChildProcess.Start("dotnet", [Repository.FrontAssembly, "--urls=http://127.0.0.1:0",
            $"--RabbitMq:Uri={brokerUri}", $"--RabbitMq:Prefix={Topology.Prefix}", $"--Unsubscribe:Secret={UnsubscribeSecret}",
            "--Logging:LogLevel:Default=Error", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information", .. settings]);
        processes.Add(process);
        await process.WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
        var address = System.Text.RegularExpressions.Regex.Match(process.Output, @"Now listening on: (http://127\.0\.0\.1:\d+)").Groups[1].Value;
        FrontAddress = new Uri(address);
        Http.Dispose();
        Http = new HttpClient { BaseAddress = FrontAddress };
        return process;
    }

    /// <summary>Starts the Front against any broker address (a node of the test's own, or a dead one).</summary>
    public static async Task<BulkSystem> StartFrontOnAsync(BrokerFixture? broker, string brokerUri, params string[] settings)
    {
        var system = new BulkSystem(broker, brokerUri) { frontSettings = settings };
        await system.StartFrontAsync();
        return system;
    }

    /// <summary>Starts the Front on the test broker through <paramref name="relay"/>, so that the test can cut the broker off.</summary>
    /// <param name="logs">Given every Warning-or-worse entry of the Front's log, when set.</param>
    public static async Task<BulkSystem> StartFrontThroughAsync(BrokerFixture broker, BrokerRelay relay, ILoggerProvider? logs = null)
    {
        var system = new BulkSystem(broker, relay.Uri, onTheTestBroker: true) { frontLogs = logs, frontSettings = logs is null ? [] : WarningsToLogs };
        await system.StartFrontAsync();
        return system;
    }

    /// <summary>A system whose Front is not started yet: the test may declare <see cref="Topology"/> first, then call
    /// <see cref="StartFrontAsync(string[])"/>. Its queues are deleted at the end when on <paramref name="broker"/>.</summary>
    /// <param name="logs">Given every Warning-or-worse entry of the Front's log, when set.</param>
    public static BulkSystem On(string brokerUri, BrokerFixture? broker = null, ILoggerProvider? logs = null) =>
        new(broker, brokerUri) { frontLogs = logs };

    /// <summary>Starts the Front with <paramref name="settings"/> (e.g. a cluster's endpoints).</summary>
    public Task StartFrontAsync(params string[] settings)
    {
        frontSettings = frontLogs is null ? settings : [.. WarningsToLogs, .. settings];
        return StartFrontAsync();
    }

    /// <summary>Starts one more Front on the same queues and streams, and returns a client for it.</summary>
    public async Task<HttpClient> StartAnotherFrontAsync(params string[] settings)
    {
        var another = CreateFront(settings);
        await another.StartAsync();
        moreFronts.Add(another);
        var address = another.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new HttpClient { BaseAddress = new Uri(address) };
    }

    /// <summary>Starts one more Front on the same queues and streams, reaching the broker at <paramref name="uri"/> (a relay's, say)
    /// with some of its services replaced by <paramref name="configure"/>, and returns a client for it.</summary>
    public async Task<HttpClient> StartAnotherFrontOnAsync(string uri, Action<IServiceCollection> configure, params string[] settings)
    {
        var another = CreateFront([.. settings, $"--RabbitMq:Uri={uri}"], configure);
        await another.StartAsync();
        moreFronts.Add(another);
        var address = another.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new HttpClient { BaseAddress = new Uri(address) };
    }

    private WebApplication CreateFront(string[] settings, Action<IServiceCollection>? configure = null) => FrontApp.Create([
        "--urls=http://127.0.0.1:0",
        $"--RabbitMq:Uri={brokerUri}",
        $"--RabbitMq:Prefix={Topology.Prefix}",
        "--Logging:LogLevel:Default=Error",
        $"--Unsubscribe:Secret={UnsubscribeSecret}",
        .. settings,
    ], configure);

    private async Task StartFrontAsync()
    {
        front = CreateFront(frontSettings, frontConfigure);
        if (frontLogs is not null)
        {
            front.Services.GetRequiredService<ILoggerFactory>().AddProvider(frontLogs);
        }

        await front.StartAsync();
        var address = front.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        FrontAddress = new Uri(address);
        Http.Dispose();
        Http = new HttpClient { BaseAddress = FrontAddress };
    }

    /// <summary>Stops the Front and starts a fresh one (empty memory, new port) on the same queues.</summary>
    public async Task RestartFrontAsync()
    {
        await front!.StopAsync();
        await front.DisposeAsync();
        await StartFrontAsync();
    }

    private string[] WorkerSettings(int smtpPort, bool authenticate, string[] settings) =>
    [
        $"--RabbitMq:Uri={brokerUri}",
        $"--RabbitMq:Prefix={Topology.Prefix}",
        "--Smtp:Host=127.0.0.1",
        $"--Smtp:Port={smtpPort}",
        "--Smtp:Security=None",
        .. authenticate ? [$"--Smtp:Username={TestSmtpServer.Username}", $"--Smtp:Password={TestSmtpServer.Password}"] : Array.Empty<string>(),
        "--Delivery:RetryBaseDelayMilliseconds=20",
        $"--Delivery:RetryTiers={string.Join(',', TestTiers)}",
        "--Logging:LogLevel:Default=Error",
        $"--Unsubscribe:Secret={UnsubscribeSecret}",
        // The Front's unsubscribe links, as recipients would reach them.
        $"--Unsubscribe:BaseUrl={(front is null ? "http://127.0.0.1" : FrontAddress.ToString())}",
        .. settings,
    ];

    /// <summary>Starts one more Worker in this process, delivering to <paramref name="smtp"/> with short retry delays.</summary>
    public Task<IHost> StartWorkerAsync(TestSmtpServer smtp, params string[] settings) => StartWorkerAsync(smtp, _ => { }, settings);

    /// <summary>Starts one more Worker in this process with some of its services replaced by <paramref name="configure"/>.</summary>
    public async Task<IHost> StartWorkerAsync(TestSmtpServer smtp, Action<IServiceCollection> configure, params string[] settings)
    {
        var worker = WorkerHost.Create(WorkerSettings(smtp.Port, authenticate: true, settings), configure);
        await worker.StartAsync();
        workers.Add(worker);
        return worker;
    }

    /// <summary>Starts one more Worker in this process delivering to an SMTP server on <paramref name="smtpPort"/> (smtp-sink), without credentials unless given.</summary>
    public async Task<IHost> StartWorkerOnAsync(int smtpPort, params string[] settings)
    {
        var worker = WorkerHost.Create(WorkerSettings(smtpPort, authenticate: false, settings));
        await worker.StartAsync();
        workers.Add(worker);
        return worker;
    }

    /// <summary>Starts a Worker as a real process (the built Bulk.Worker.dll), so that it can be killed for real.</summary>
    public async Task<ChildProcess> StartWorkerProcessAsync(int smtpPort, params string[] settings)
    {
        var process = ChildProcess.Start("dotnet", [Repository.WorkerAssembly, .. WorkerSettings(smtpPort, authenticate: false, settings),
            "--Logging:LogLevel:Bulk.Worker.Delivery.DeliveryConsumer=Information"]);
        processes.Add(process);
        await process.WaitForOutputAsync("Consuming", TimeSpan.FromSeconds(60));
        return process;
    }

    public Task<uint> WorkQueueDepthAsync() => broker!.MessageCountAsync(Topology.WorkQueue);

    public async Task<string> PostAsync(string body, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns")
        {
            Content = JsonBody.Of(body),
        };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public Task<CampaignStatus> StatusAsync(string id) => CampaignPolling.StatusAsync(Http, id);

    /// <summary>Polls the campaign's status until <paramref name="done"/> holds.</summary>
    public Task<CampaignStatus> WaitForStatusAsync(string id, Func<CampaignStatus, bool> done, TimeSpan timeout) =>
        CampaignPolling.WaitForStatusAsync(Http, id, done, timeout);

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in workers)
        {
            await worker.StopAsync();
            worker.Dispose();
        }

        foreach (var process in processes)
        {
            await process.DisposeAsync();
        }

        foreach (var another in moreFronts.Append(front).OfType<WebApplication>())
        {
            await another.StopAsync();
            await another.DisposeAsync();
        }

        Http.Dispose();
        if (onTheTestBroker)
        {
            await broker!.DeleteQueuesAsync([Topology.WorkQueue, Topology.DeadQueue, Topology.OutcomesStream, Topology.SuppressionsStream,
                Topology.SnapshotStream(Topology.OutcomesStream), Topology.SnapshotStream(Topology.SuppressionsStream), Topology.PausedQueue, Topology.OverLimitQueue,
                .. TestTiers.Select(t => Topology.RetryQueue(TimeSpan.FromSeconds(int.Parse(t[..^1], System.Globalization.CultureInfo.InvariantCulture))))]);
        }
    }
}
