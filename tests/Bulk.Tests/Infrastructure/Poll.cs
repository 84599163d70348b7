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

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout) => UntilAsync(() => Task.FromResult(condition()), timeout);

    /// <summary>Reads <paramref name="read"/> until what it gives satisfies <paramref name="done"/>, and returns that.</summary>
    public static async Task<T> UntilAsync<T>(Func<T> read, Func<T, bool> done, TimeSpan timeout)
    {
        var value = read();
        await UntilAsync(() => done(value = read()), timeout);
        return value;
    }
}
