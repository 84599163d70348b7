namespace Bulk.Worker.Delivery;

/// <summary>Counts work in progress so that shutdown can wait until none is left.</summary>
public sealed class InFlightCounter
{
    private readonly Lock countLock = new();
    private int count;
    private TaskCompletionSource? idle;

    public IDisposable Enter()
    {
        lock (countLock)
        {
            count++;
        }

        DeliveryMetrics.JobStarted();
        return new Exit(this);
    }

    public Task WhenIdleAsync()
    {
        lock (countLock)
        {
            if (count == 0)
            {
                return Task.CompletedTask;
            }

            idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return idle.Task;
        }
    }

    private void Leave()
    {
        DeliveryMetrics.JobEnded();
        lock (countLock)
        {
            if (--count == 0 && idle is not null)
            {
                idle.TrySetResult();
                idle = null;
            }
        }
    }

    private sealed class Exit(InFlightCounter counter) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                counter.Leave();
            }
        }
    }
}
