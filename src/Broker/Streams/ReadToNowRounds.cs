namespace Bulk.Broker.Streams;

/// <summary>Reads a stream to now for many callers at once: each round writes one marker, shared by every caller that
/// came before it was written.</summary>
/// <remarks>
/// A caller is covered by a round whose marker is written after it arrived: whatever was on the stream when it called
/// is before that marker. One round is under way at a time, and the callers that arrive meanwhile share the next, so a
/// Worker that reads to now before each job costs the broker one marker per round trip, not one per job.
/// </remarks>
public sealed class ReadToNowRounds<TEvent>(EventStream<TEvent> stream, TimeSpan timeout)
    where TEvent : class
{
    private readonly Lock gate = new();
    private Task current = Task.CompletedTask;
    private Task? next;

    /// <summary>Returns once this process's fold holds every entry written to the stream before the call, by any process.</summary>
    /// <exception cref="IOException">The broker is unreachable or did not confirm the marker.</exception>
    /// <exception cref="OperationCanceledException">The marker was not read back within the timeout.</exception>
    public Task ReadToNowAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            next ??= current = RoundAfterAsync(current);
            return next.WaitAsync(cancellationToken);
        }
    }

    private async Task RoundAfterAsync(Task previous)
    {
        // Always yields: the round is set as the next before it can start, and starts only once the one before it ended.
        await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding);
        lock (gate)
        {
            next = null;
        }

        using var limit = new CancellationTokenSource(timeout);
        await stream.ReadToNowAsync(limit.Token);
    }
}
