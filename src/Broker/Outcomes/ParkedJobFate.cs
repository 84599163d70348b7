namespace Bulk.Broker.Outcomes;

/// <summary>What a replay of the parking lot does with one parked job, by what the ledger knows of its campaign.</summary>
public enum ParkedJobFate
{
    /// <summary>Its campaign is known and not cancelled: back to work, its recipients reopened.</summary>
    Replay,

    /// <summary>Its campaign is cancelled: dropped unsent, its recipients staying failed, so its numbers never change.</summary>
    Drop,

    /// <summary>No ledger knows its campaign any more (<c>History__SummaryDays</c>, or history lost): it stays parked.
    /// Sending it would bring the campaign back as a new one, <c>sending</c> forever with one job's recipients done.</summary>
    KeepParked,
}
