using System.ComponentModel.DataAnnotations;

namespace Bulk.Broker.Streams;

/// <summary>How the streams' history is kept short to read: snapshots, and how long finished campaigns are remembered
/// (<c>History__*</c>).</summary>
public sealed class HistoryOptions
{
    public const string Section = "History";

    /// <summary>How often a snapshot of each stream's fold is written, when the stream has new entries since the last.</summary>
    [Range(1, 86_400, ErrorMessage = "History__SnapshotSeconds must be between 1 and 86400")]
    public int SnapshotSeconds { get; set; } = 300;

    /// <summary>A snapshot is also written as soon as this many entries were folded since the last: a busy stream does
    /// not wait <see cref="SnapshotSeconds"/>, so what a new process reads after the snapshot stays short.</summary>
    [Range(1, int.MaxValue, ErrorMessage = "History__SnapshotEntries must be at least 1")]
    public int SnapshotEntries { get; set; } = 200_000;

    /// <summary>The most each snapshot stream may hold on disk; its oldest snapshots go first, the latest always stays.</summary>
    [Range(1_000_000, long.MaxValue, ErrorMessage = "History__SnapshotStreamMaxBytes must be at least 1000000")]
    public long SnapshotStreamMaxBytes { get; set; } = 1_000_000_000;

    /// <summary>How long a finished (completed or cancelled) campaign's summary, failures and idempotency key stay
    /// queryable, whatever the outcomes stream's retention.</summary>
    [Range(1, 36_500, ErrorMessage = "History__SummaryDays must be between 1 and 36500")]
    public int SummaryDays { get; set; } = 90;
}
