using Bulk.Front;
using Bulk.Tests.Infrastructure;
using Bulk.Worker;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Bulk.Tests.Telemetry;

/// <summary>Spans and metrics name their service: <c>bulk-front</c> and <c>bulk-worker</c>, unless <c>OTEL_SERVICE_NAME</c> says otherwise.</summary>
public sealed class ServiceNameTests
{
    private static readonly string[] Settings =
    [
        "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}",
        "--Unsubscribe:BaseUrl=https://mail.example.com",
    ];

    [Theory]
    [InlineData(null, "bulk-front", "bulk-worker")]
    [InlineData("mailer-eu", "mailer-eu", "mailer-eu")]
    public void EachProcessNamesItsService_AndOtelServiceNameOverridesIt(string? setting, string front, string worker)
    {
        string[] settings = [.. Settings, .. setting is null ? Array.Empty<string>() : [$"--OTEL_SERVICE_NAME={setting}"]];
        using var workerHost = WorkerHost.Create(settings);
        var frontHost = FrontApp.Create(settings);

        Assert.Equal(front, ServiceName(frontHost.Services.GetRequiredService<TracerProvider>().GetResource()));
        Assert.Equal(front, ServiceName(frontHost.Services.GetRequiredService<MeterProvider>().GetResource()));
        Assert.Equal(worker, ServiceName(workerHost.Services.GetRequiredService<TracerProvider>().GetResource()));
        ((IDisposable)frontHost).Dispose();
    }

    private static string? ServiceName(OpenTelemetry.Resources.Resource resource) =>
        resource.Attributes.FirstOrDefault(a => a.Key == "service.name").Value as string;
}
