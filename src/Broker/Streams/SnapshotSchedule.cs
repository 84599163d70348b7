using System.Threading.Channels;

namespace Bulk.Broker.Streams;

/// <summary>When the next snapshot round is due: every <see cref="HistoryOptions.SnapshotSeconds"/>, and as soon as
/// <see cref="HistoryOptions.SnapshotEntries"/> entries were folded since the last snapshot, whichever comes first.</summary>
/// <remarks>
/// A timer alone let a busy stream pile up a few minutes of entries (a million in three, seen with a big campaign) for
/// the next process to replay. The tail counts what it folds; a round that writes a snapshot says how many it covered.
/// </remarks>
internal sealed class SnapshotSchedule(HistoryOptions history)
{
    // At most one wake-up waits: entries keep coming while a snapshot is written, and one more round covers them all.
    private readonly Channel<bool> enough = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly PeriodicTimer timer = new(TimeSpan.FromSeconds(history.SnapshotSeconds));
    private Task<bool>? tick;
    private Task<bool>? wake;
    private long folded;
    private long covered;

    /// <summary>Entries folded so far (markers are not); read under the fold's lock, it is what a snapshot covers.</summary>
    public long Folded => Interlocked.Read(ref folded);

    /// <summary>Called by the tail for every entry it folds.</summary>
    public void Fold()
    {
        if (Interlocked.Increment(ref folded) - Interlocked.Read(ref covered) == history.SnapshotEntries)
        {
            enough.Writer.TryWrite(true);
        }
    }

    /// <summary>A snapshot covering the first <paramref name="entries"/> entries folded was written.</summary>
    public void Written(long entries)
    {
        Interlocked.Exchange(ref covered, entries);
        if (Folded - entries >= history.SnapshotEntries)
        {
            enough.Writer.TryWrite(true); // the entries folded while it was written are already enough for another
        }
    }

    /// <summary>A round for the entries found another process holding the writer lock: the next
    /// <see cref="HistoryOptions.SnapshotEntries"/> entries try again, so that a holder that died is replaced soon.</summary>
    public void Skipped() => Interlocked.Exchange(ref covered, Folded);

    /// <summary>Returns when the next round is due; true when it is for the entries folded, false for the time.</summary>
    /// <remarks>The timer ticks on its own whatever the entries do, as it did alone; the waits outlive a round that lost
    /// the race, so nothing is left waiting behind.</remarks>
    public async Task<bool> WaitAsync(CancellationToken stoppingToken)
    {
        tick ??= timer.WaitForNextTickAsync(stoppingToken).AsTask();
        wake ??= enough.Reader.WaitToReadAsync(stoppingToken).AsTask();
        var first = await Task.WhenAny(tick, wake);
        stoppingToken.ThrowIfCancellationRequested();
        if (first == wake)
        {
            wake = null;
            enough.Reader.TryRead(out _);
            return true;
        }

        tick = null;
        return false;
    }
}
