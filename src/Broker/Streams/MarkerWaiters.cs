using System.Collections.Concurrent;

namespace Bulk.Broker.Streams;

/// <summary>The markers a process has written to a stream and waits to read back: each completes when its tail applies it.</summary>
public sealed class MarkerWaiters
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> waiting = new(StringComparer.Ordinal);

    /// <summary>Registers interest in a marker before it is written; completes when <see cref="Seen"/> is called for it.</summary>
    public Task WaitAsync(string markerId) =>
        waiting.GetOrAdd(markerId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Whoever waited for the marker no longer does: it was seen, or its write failed, or the wait was given up.</summary>
    public void Forget(string markerId) => waiting.TryRemove(markerId, out _);

    /// <summary>How many markers are waited for.</summary>
    public int Count => waiting.Count;

    /// <summary>The tail read the marker: whoever waits for it goes on.</summary>
    public void Seen(string markerId)
    {
        if (waiting.TryRemove(markerId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }
}
