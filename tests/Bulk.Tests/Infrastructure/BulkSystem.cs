using Bulk.Contracts;
using Bulk.Front;
using Bulk.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bulk.Tests.Infrastructure;

/// <summary>A Front on a real loopback port and any number of Workers, in this process, on their own queues.</summary>
public sealed class BulkSystem : IAsyncDisposable
{
    private readonly BrokerFixture broker;
    private readonly List<IHost> workers = [];
    private WebApplication? front;

    private BulkSystem(BrokerFixture broker)
    {
        this.broker = broker;
        Topology = new Topology($"test-{Guid.NewGuid():N}"[..17]);
    }

    public Topology Topology { get; }

    public Uri FrontAddress { get; private set; } = null!;

    public HttpClient Http { get; } = new();

    public static async Task<BulkSystem> StartFrontAsync(BrokerFixture broker, params string[] settings)
    {
        var system = new BulkSystem(broker);
        await system.StartFrontWithAsync(broker.Uri, settings);
        return system;
    }

    /// <summary>Starts the Front against any broker address (a dead one, to see how it fails).</summary>
    public static async Task<BulkSystem> StartFrontAgainstAsync(BrokerFixture broker, string brokerUri)
    {
        var system = new BulkSystem(broker);
        await system.StartFrontWithAsync(brokerUri, []);
        return system;
    }

    private async Task StartFrontWithAsync(string brokerUri, string[] settings)
    {
        front = FrontApp.Create([
            "--urls=http://127.0.0.1:0",
            $"--RabbitMq:Uri={brokerUri}",
            $"--RabbitMq:Prefix={Topology.Prefix}",
            "--Logging:LogLevel:Default=Error",
            .. settings,
        ]);
        await front.StartAsync();
        var address = front.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        FrontAddress = new Uri(address);
        Http.BaseAddress = FrontAddress;
    }

    /// <summary>Starts one more Worker delivering to <paramref name="smtp"/> with short retry delays.</summary>
    public async Task<IHost> StartWorkerAsync(TestSmtpServer smtp, params string[] settings)
    {
        var worker = WorkerHost.Create([
            $"--RabbitMq:Uri={broker.Uri}",
            $"--RabbitMq:Prefix={Topology.Prefix}",
            "--Smtp:Host=127.0.0.1",
            $"--Smtp:Port={smtp.Port}",
            "--Smtp:Security=None",
            $"--Smtp:Username={TestSmtpServer.Username}",
            $"--Smtp:Password={TestSmtpServer.Password}",
            "--Delivery:RetryBaseDelayMilliseconds=20",
            "--Logging:LogLevel:Default=Error",
            .. settings,
        ]);
        await worker.StartAsync();
        workers.Add(worker);
        return worker;
    }

    public Task<uint> WorkQueueDepthAsync() => broker.MessageCountAsync(Topology.WorkQueue);

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in workers)
        {
            await worker.StopAsync();
            worker.Dispose();
        }

        if (front is not null)
        {
            await front.StopAsync();
            await front.DisposeAsync();
        }

        Http.Dispose();
        await broker.DeleteQueuesAsync(Topology.WorkQueue, Topology.DeadQueue);
    }
}
