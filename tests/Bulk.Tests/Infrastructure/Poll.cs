namespace Bulk.Tests.Infrastructure;

/// <summary>Waiting on state rather than for a fixed time: the condition is checked every 50 ms until it holds or the deadline passes.</summary>
public static class Poll
{
    /// <exception cref="TimeoutException"><paramref name="condition"/> still did not hold after <paramref name="timeout"/>.</exception>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met within {timeout}.");
            }

            await Task.Delay(50);
        }
    }
}
