using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bulk.Tests.Infrastructure;

/// <summary>One log entry as a logger received it.</summary>
public sealed record CapturedLogEntry(LogLevel Level, string Category, string Message, Exception? Exception)
{
    public override string ToString() =>
        $"{Level} {Category}: {Message}{(Exception is null ? "" : $"{Environment.NewLine}    {Exception.GetType().FullName}: {Exception.Message}")}";
}

/// <summary>Keeps every log entry of an in-process host, so a test can say "nothing went wrong in there", not only "the answers looked right".</summary>
/// <remarks>The levels it receives are the host's logging filter's: give the host a level low enough for what the test looks for.</remarks>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLogEntry> entries = new();

    public IReadOnlyCollection<CapturedLogEntry> Entries => entries;

    /// <summary>How many entries there are so far: give it to <see cref="Since"/> to see only what came after.</summary>
    public int Mark() => entries.Count;

    /// <summary>The entries logged after <paramref name="mark"/>, in order.</summary>
    public IReadOnlyList<CapturedLogEntry> Since(int mark) => [.. entries.Skip(mark)];

    /// <summary>The entries after <paramref name="mark"/> that carry an exception or are at Error or Critical: a healthy run has none.</summary>
    public IReadOnlyList<CapturedLogEntry> FailuresSince(int mark) =>
        [.. Since(mark).Where(e => e.Exception is not null || e.Level >= LogLevel.Error)];

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName, entries);

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(string category, ConcurrentQueue<CapturedLogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue(new CapturedLogEntry(logLevel, category, formatter(state, exception), exception));
    }
}
