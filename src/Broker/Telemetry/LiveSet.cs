using System.Collections.Concurrent;

namespace Bulk.Broker.Telemetry;

/// <summary>The running objects an observable instrument reads at each collection; each adds itself while it runs.</summary>
/// <remarks>
/// <see cref="BulkTelemetry.Meter"/> is static and outlives hosts (the tests run several in one process): an instrument
/// made per host would stay on it after the host stopped and keep the host's state alive. So each observable instrument
/// is made once, and reads whatever is running now.
/// </remarks>
public sealed class LiveSet<T>
    where T : class
{
    private readonly ConcurrentDictionary<T, byte> items = new(ReferenceEqualityComparer.Instance);

    /// <summary>Adds <paramref name="item"/> until the returned handle is disposed.</summary>
    public IDisposable Add(T item)
    {
        items[item] = 0;
        return new Removal(this, item);
    }

    public ICollection<T> Items => items.Keys;

    private sealed class Removal(LiveSet<T> set, T item) : IDisposable
    {
        public void Dispose() => set.items.TryRemove(item, out _);
    }
}
