namespace Bulk.Templates;

/// <summary>Turns at rendering, as many at once as the machine has cores, handed out in turn to the owners waiting for
/// one (a campaign on a Worker, a caller on the Front), however many renderings each has waiting.</summary>
/// <remarks>
/// Rendering is CPU work, and its time budget is wall-clock time: a campaign whose every recipient takes the whole
/// budget, rendered on as many threads as it has sends under way, took the cores from everyone else, and another
/// campaign's quick rendering ran out of time behind it. With turns, a rendering waits for at most one rendering of each
/// other owner waiting, and then has a core to itself.
/// </remarks>
public sealed class RenderTurns
{
    private readonly Lock gate = new();

    /// <summary>The owners with renderings waiting, the next to be served first; each with its waiting renderings in order.</summary>
    private readonly LinkedList<(string Owner, Queue<TaskCompletionSource<Turn>> Waiting)> ring = new();
    private readonly Dictionary<string, LinkedListNode<(string Owner, Queue<TaskCompletionSource<Turn>> Waiting)>> byOwner = new(StringComparer.Ordinal);
    private int free;

    public RenderTurns(int slots = 0)
    {
        free = slots > 0 ? slots : Environment.ProcessorCount;
        Slots = free;
    }

    public int Slots { get; }

    /// <summary>Waits for a turn for <paramref name="owner"/>; disposing the turn hands it on.</summary>
    public ValueTask<Turn> TakeAsync(string owner, CancellationToken cancellationToken)
    {
        TaskCompletionSource<Turn> waiter;
        lock (gate)
        {
            if (free > 0 && ring.Count == 0)
            {
                free--;
                return ValueTask.FromResult(new Turn(this));
            }

            waiter = new TaskCompletionSource<Turn>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!byOwner.TryGetValue(owner, out var node))
            {
                node = ring.AddLast((owner, new Queue<TaskCompletionSource<Turn>>()));
                byOwner.Add(owner, node);
            }

            node.Value.Waiting.Enqueue(waiter);
        }

        // A waiter given up is skipped when its turn comes (see Release).
        var registration = cancellationToken.Register(() => waiter.TrySetCanceled(cancellationToken));
        waiter.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return new ValueTask<Turn>(waiter.Task);
    }

    /// <summary>The turn goes to the first waiting rendering of the owner next in the ring, and that owner goes to the back.</summary>
    private void Release()
    {
        lock (gate)
        {
            while (ring.First is { } next)
            {
                ring.RemoveFirst();
                var waiter = next.Value.Waiting.Dequeue();
                if (next.Value.Waiting.Count > 0)
                {
                    ring.AddLast(next);
                }
                else
                {
                    byOwner.Remove(next.Value.Owner);
                }

                if (waiter.TrySetResult(new Turn(this)))
                {
                    return;
                }
            }

            free++;
        }
    }

    /// <summary>One rendering's turn; disposing it hands the turn on.</summary>
    public sealed class Turn(RenderTurns turns) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                turns.Release();
            }
        }
    }
}
