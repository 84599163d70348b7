using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Bulk.Broker.Telemetry;

/// <summary>The one trace source and the one meter every Bulk process writes to; <c>service.name</c> tells them apart.</summary>
public static class BulkTelemetry
{
    public const string Name = "Bulk";

    private static readonly string? Version = typeof(BulkTelemetry).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(Name, Version);

    public static readonly Meter Meter = new(Name, Version);
}
