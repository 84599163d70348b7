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
