namespace Bulk.Broker;

/// <summary>The loop every long-lived broker client runs: do the work on one connection, and when that connection
/// is lost, wait (doubling up to a ceiling) and start again, until stopping.</summary>
public static class Reconnecting
{
    /// <param name="session">One connection's life; it returns or throws when the connection is gone.</param>
    /// <param name="interrupted">Told why a session ended and how long until the next one.</param>
    public static async Task RunAsync(
        Func<CancellationToken, Task> session,
        Action<string, TimeSpan> interrupted,
        TimeSpan firstDelay,
        TimeSpan maxDelay,
        CancellationToken stoppingToken)
    {
        var delay = firstDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            var began = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                await session(stoppingToken);
                delay = firstDelay;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A session that ran for a while before it failed starts the back-off over: a node of a cluster
                // dying hours after the last outage is reconnected to the next node at once, not after the ceiling.
                if (System.Diagnostics.Stopwatch.GetElapsedTime(began) > maxDelay)
                {
                    delay = firstDelay;
                }

                interrupted(e.Message, delay);
            }

            try
            {
                await Task.Delay(delay, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, maxDelay.Ticks));
        }
    }
}
