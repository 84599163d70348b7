namespace Bulk.Broker.Streams;

/// <summary>The markers a process has written to a stream and waits to read back: each completes when its tail applies it.</summary>
public sealed class MarkerWaiters
{
    private readonly Lock waitingLock = new();
    private readonly Dictionary<string, TaskCompletionSource> waiting = new(StringComparer.Ordinal);

    /// <summary>Registers interest in a marker before it is written; completes when <see cref="Seen"/> is called for it.</summary>
    public Task WaitAsync(string markerId)
    {
        lock (waitingLock)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting[markerId] = waiter;
            return waiter.Task;
        }
    }

    /// <summary>The tail read the marker: whoever waits for it goes on.</summary>
    public void Seen(string markerId)
    {
        lock (waitingLock)
        {
            if (waiting.Remove(markerId, out var waiter))
            {
                waiter.TrySetResult();
            }
        }
    }
}
