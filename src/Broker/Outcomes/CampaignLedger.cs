using System.Collections;
using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;

namespace Bulk.Broker.Outcomes;

/// <summary>What a Worker should do with one recipient of a campaign, as the ledger knows it.</summary>
public enum RecipientState
{
    /// <summary>Send it.</summary>
    Pending,

    /// <summary>Already delivered, failed or suppressed: skip it.</summary>
    Done,

    /// <summary>The campaign is paused: keep the recipient's work on the broker, unsent.</summary>
    Paused,

    /// <summary>The campaign is cancelled: drop the recipient, unsent.</summary>
    Cancelled,

    /// <summary>The relay refused the campaign's sender: keep the recipient's work on the broker, unsent, until it is resumed.</summary>
    Held,
}

/// <summary>The fold of the outcomes stream: per campaign, counts and one "done" bit per recipient.</summary>
/// <remarks>
/// Every process keeps its own, fed by its tail of the stream, so the ledger itself is never shared or persisted.
/// Memory is a bit per recipient of campaigns still in progress; a finished campaign keeps only its counts and failures.
/// Applying an event twice changes nothing, so a tail may safely re-read.
/// </remarks>
public sealed partial class CampaignLedger
{
    public static class Statuses
    {
        public const string Queued = "queued";
        public const string Sending = "sending";
        public const string Completed = "completed";
        public const string CompletedWithFailures = "completed_with_failures";
        public const string Paused = "paused";
        public const string Cancelled = "cancelled";
        public const string Held = "held";
    }

    private readonly Lock stateLock = new();
    private readonly Dictionary<string, Campaign> campaigns = new(StringComparer.Ordinal);
    private readonly List<Campaign> order = [];

    /// <summary>Each tenant's campaigns in the order they were accepted: a tenant's list costs its own campaigns, not everyone's.</summary>
    private readonly Dictionary<string, List<Campaign>> byTenant = new(StringComparer.Ordinal);
    private ReplyTemplates replies = new();
    private DateTimeOffset? firstEntryAt;
    private long releases;

    /// <summary>How many times a campaign was resumed or cancelled: the work waiting for it may go (see the Worker's PausedJobs).</summary>
    public long Releases => Interlocked.Read(ref releases);

    /// <summary>The time of the earliest entry the ledger has taken in (snapshots included): how far back its history goes.</summary>
    public DateTimeOffset? FirstEntryAt
    {
        get
        {
            lock (stateLock)
            {
                return firstEntryAt;
            }
        }
    }

    public void Apply(OutcomeEvent e)
    {
        lock (stateLock)
        {
            firstEntryAt ??= e.At;
            switch (e.Type)
            {
                case OutcomeType.Accepted:
                    if (!acceptances.Accepted(e))
                    {
                        break; // a void submission's acceptance, landed late: no campaign, nothing will be sent
                    }

                    var accepted = GetOrAdd(e.CampaignId, e.Total);
                    accepted.CreatedAt ??= e.At;
                    // An acceptance written again (a retry that found its campaign live) is of the same body.
                    accepted.Subject ??= e.Subject;
                    accepted.From ??= e.From;
                    if (accepted.Tenant is null && !string.IsNullOrEmpty(e.Tenant))
                    {
                        // The first acceptance says whose it is; one written again (a retry that found it live) is the same caller's.
                        accepted.Tenant = e.Tenant;
                        OfTenant(e.Tenant).Add(accepted);
                    }
                    accepted.Version++;
                    break;
                case OutcomeType.Pending or OutcomeType.Started or OutcomeType.Voided:
                    acceptances.Apply(e);
                    break;
                case OutcomeType.Progress:
                    ApplyProgress(GetOrAdd(e.CampaignId, e.Total), e);
                    break;
                case OutcomeType.Replayed:
                    // Of a campaign the ledger does not know, nothing: that would bring a forgotten campaign back.
                    if (campaigns.TryGetValue(e.CampaignId, out var replayed) && replayed.Reopen(e.Replayed ?? []))
                    {
                        replayed.Version++;
                    }

                    break;
                case OutcomeType.Paused or OutcomeType.Resumed or OutcomeType.Cancelled or OutcomeType.Held:
                    var controlled = GetOrAdd(e.CampaignId, e.Total);
                    controlled.Control(e.Type, e.At, e.Reason);
                    if (e.Type is OutcomeType.Resumed or OutcomeType.Cancelled)
                    {
                        Interlocked.Increment(ref releases);
                    }

                    break;
            }
        }
    }

    public bool IsDone(string campaignId, int index) => State(campaignId, index) == RecipientState.Done;

    /// <summary>What a replay does with a parked job of <paramref name="campaignId"/>: decided by the Front that moves
    /// it, and again by the Worker that takes it, since the campaign may be cancelled or forgotten in between.</summary>
    public ParkedJobFate FateOfParked(string campaignId)
    {
        lock (stateLock)
        {
            return !campaigns.TryGetValue(campaignId, out var c) ? ParkedJobFate.KeepParked
                : c.CancelledAt is not null ? ParkedJobFate.Drop
                : ParkedJobFate.Replay;
        }
    }

    public RecipientState State(string campaignId, int index)
    {
        lock (stateLock)
        {
            if (!campaigns.TryGetValue(campaignId, out var c))
            {
                return RecipientState.Pending;
            }

            return c.IsDone(index) ? RecipientState.Done
                : c.CancelledAt is not null ? RecipientState.Cancelled
                : c.HeldReason is not null ? RecipientState.Held
                : c.Paused ? RecipientState.Paused
                : RecipientState.Pending;
        }
    }

    public CampaignStatus? Find(string campaignId) => Find(campaignId, TenantView.Everyone);

    /// <summary>The campaign's status, or null when there is none or <paramref name="view"/> does not see it: the two
    /// look the same, so that a campaign id tells another tenant nothing.</summary>
    public CampaignStatus? Find(string campaignId, TenantView view)
    {
        lock (stateLock)
        {
            return campaigns.TryGetValue(campaignId, out var c) && view.Sees(c.Tenant) ? c.Snapshot() : null;
        }
    }

    /// <summary>The most recently accepted campaigns first.</summary>
    public IReadOnlyList<CampaignStatus> Recent(int limit) => Recent(limit, TenantView.Everyone);

    /// <summary>The most recently accepted campaigns <paramref name="view"/> sees, first.</summary>
    public IReadOnlyList<CampaignStatus> Recent(int limit, TenantView view)
    {
        lock (stateLock)
        {
            var seen = view.SeesAll ? order : view.Tenant is { } tenant && byTenant.TryGetValue(tenant, out var own) ? own : [];
            var recent = new List<CampaignStatus>(Math.Min(limit, seen.Count));
            // From the newest back, with no copy of the list: this runs under the lock Workers need for every recipient.
            for (var i = seen.Count - 1; i >= 0 && recent.Count < limit; i--)
            {
                recent.Add(seen[i].Snapshot());
            }

            return recent;
        }
    }

    /// <summary>A page of a campaign's failed recipients in recipient order, with how many there are in all.</summary>
    public (IReadOnlyList<FailedRecipient> Page, int Count)? Failures(string campaignId, int offset, int limit) =>
        Failures(campaignId, offset, limit, TenantView.Everyone);

    /// <summary>A page of a campaign's failed recipients, when <paramref name="view"/> sees the campaign.</summary>
    public (IReadOnlyList<FailedRecipient> Page, int Count)? Failures(string campaignId, int offset, int limit, TenantView view)
    {
        lock (stateLock)
        {
            if (!campaigns.TryGetValue(campaignId, out var c) || !view.Sees(c.Tenant))
            {
                return null;
            }

            return ([.. c.Failures.InOrder(replies).Skip(offset).Take(limit)], c.Failures.Count);
        }
    }

    /// <summary>Drops campaigns that finished (completed or cancelled) before <paramref name="cutoff"/>, with their
    /// failures and idempotency keys: how long summaries stay queryable (<c>History__SummaryDays</c>).</summary>
    /// <remarks>
    /// Also dropped: a campaign the ledger never saw accepted, with its last delivery before the cutoff. That is what an
    /// earlier version made of a forgotten campaign's replayed dead letters, <c>sending</c> for ever with one job done:
    /// the campaign went long ago, and the entries that recreated it are as old.
    /// </remarks>
    /// <returns>How many were dropped.</returns>
    public int Forget(DateTimeOffset cutoff)
    {
        lock (stateLock)
        {
            var gone = order.Where(c => (c.CompletedAt ?? c.CancelledAt) is { } ended ? ended < cutoff : c.CreatedAt is null && c.LastDeliveryAt < cutoff)
                .Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
            if (gone.Count > 0)
            {
                order.RemoveAll(c => gone.Contains(c.Id));
                foreach (var (tenant, list) in byTenant.ToList())
                {
                    list.RemoveAll(c => gone.Contains(c.Id));
                    if (list.Count == 0)
                    {
                        byTenant.Remove(tenant);
                    }
                }

                foreach (var id in gone)
                {
                    campaigns.Remove(id);
                }
            }

            // Also void submissions settled before the cutoff, which never became a campaign to forget.
            acceptances.Forget(gone, cutoff, campaigns.ContainsKey);

            return gone.Count;
        }
    }

    /// <summary>How many campaigns the ledger holds in each status; statuses no campaign has are left out.</summary>
    public Dictionary<string, int> CountByStatus()
    {
        lock (stateLock)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var campaign in order)
            {
                counts[campaign.Status] = counts.GetValueOrDefault(campaign.Status) + 1;
            }

            return counts;
        }
    }

    /// <summary>How many campaigns the ledger holds, finished or not.</summary>
    public int Count
    {
        get
        {
            lock (stateLock)
            {
                return order.Count;
            }
        }
    }

    /// <summary>The snapshot format <see cref="WriteTo"/> writes. 2 added each campaign's subject and sender; 3 its tenant
    /// and when each submission was settled.</summary>
    /// <remarks>A snapshot of format 1 has no number: it begins with <see cref="Releases"/>, which is never negative.</remarks>
    public const int SnapshotFormat = 3;

    /// <summary>Begins a snapshot of format 2 or later, in place of format 1's release count.</summary>
    private const long NumberedFormat = -1;

    /// <summary>Writes everything the ledger holds, for a snapshot; <see cref="ReadFrom"/> reads it back.</summary>
    public void WriteTo(BinaryWriter writer)
    {
        lock (stateLock)
        {
            // Read by code of format 1, this is a release count of -1 and a first-entry time of -2 ticks: that code throws
            // at once and replays the whole stream (EventStream does so with any snapshot it cannot read), where it would
            // otherwise misread every campaign after the first.
            writer.Write(NumberedFormat);
            writer.Write(true);
            writer.Write(-(long)SnapshotFormat);
            writer.Write(Interlocked.Read(ref releases));
            Snapshots.WriteNullable(writer, firstEntryAt);
            writer.Write(order.Count);
            foreach (var campaign in order)
            {
                campaign.WriteTo(writer, replies);
            }

            acceptances.WriteTo(writer);
        }
    }

    /// <summary>Empties the ledger.</summary>
    public void Clear()
    {
        lock (stateLock)
        {
            campaigns.Clear();
            byTenant.Clear();
            order.Clear();
            replies = new ReplyTemplates();
            acceptances.ReadFrom(null, SnapshotFormat);
            firstEntryAt = null;
            Interlocked.Exchange(ref releases, 0);
        }
    }

    /// <summary>Replaces what the ledger holds with what <see cref="WriteTo"/> wrote, in this format or an earlier one.</summary>
    /// <exception cref="InvalidDataException">The snapshot is of a later format than this code knows.</exception>
    public void ReadFrom(BinaryReader reader)
    {
        lock (stateLock)
        {
            Clear();
            var first = reader.ReadInt64();
            var format = 1;
            if (first == NumberedFormat)
            {
                reader.ReadBoolean();
                format = checked((int)-reader.ReadInt64());
                if (format is < 2 or > SnapshotFormat)
                {
                    throw new InvalidDataException($"a ledger snapshot of format {format}; this code reads formats 1 to {SnapshotFormat}");
                }

                first = reader.ReadInt64();
            }

            Interlocked.Exchange(ref releases, first);
            firstEntryAt = Snapshots.ReadNullableTime(reader);
            var count = reader.ReadInt32();
            for (var i = 0; i < count; i++)
            {
                var campaign = Campaign.ReadFrom(reader, replies, format);
                campaigns[campaign.Id] = campaign;
                order.Add(campaign);
                if (campaign.Tenant is { } tenant)
                {
                    OfTenant(tenant).Add(campaign);
                }
            }

            acceptances.ReadFrom(reader, format);
        }
    }

    private List<Campaign> OfTenant(string tenant)
    {
        if (!byTenant.TryGetValue(tenant, out var list))
        {
            list = [];
            byTenant[tenant] = list;
        }

        return list;
    }

    private Campaign GetOrAdd(string id, int total)
    {
        if (!campaigns.TryGetValue(id, out var campaign))
        {
            campaign = new Campaign(id, Math.Max(total, 0));
            campaigns[id] = campaign;
            order.Add(campaign);
        }
        else if (campaign.Total == 0 && total > 0)
        {
            campaign.Total = total;
        }

        return campaign;
    }

    private void ApplyProgress(Campaign c, OutcomeEvent e)
    {
        c.Version++;
        foreach (var index in e.Delivered ?? [])
        {
            if (!c.MarkDone(index))
            {
                continue; // a duplicate delivery, or one read twice: counted once
            }

            c.Delivered++;
            c.FirstDeliveryAt ??= e.At;
            c.LastDeliveryAt = e.At;
        }

        foreach (var failure in e.Failed ?? [])
        {
            if (c.MarkDone(failure.Index))
            {
                c.Failed++;
                c.Failures.Add(failure, replies);
            }
        }

        foreach (var index in e.Suppressed ?? [])
        {
            if (c.MarkDone(index))
            {
                c.Suppressed++;
            }
        }

        foreach (var deferred in e.Deferred ?? [])
        {
            if (!c.IsDone(deferred.Index))
            {
                c.DeferredNow.Add(deferred.Index);
            }
        }

        if (c.Total > 0 && c.Delivered + c.Failed + c.Suppressed >= c.Total && c.CompletedAt is null)
        {
            c.CompletedAt = e.At;
            c.Compact();
        }
    }

    private sealed class Campaign(string id, int total)
    {
        private BitArray? done;

        public string Id { get; } = id;
        public int Total { get; set; } = total;
        public int Delivered { get; set; }
        public int Failed { get; set; }

        /// <summary>On the suppression list when their turn came: not sent, not failed.</summary>
        public int Suppressed { get; set; }

        public HashSet<int> DeferredNow { get; } = [];
        public FailureList Failures { get; } = new();
        public DateTimeOffset? CreatedAt { get; set; }
        public DateTimeOffset? FirstDeliveryAt { get; set; }
        public DateTimeOffset? LastDeliveryAt { get; set; }
        public DateTimeOffset? CompletedAt { get; set; }
        public DateTimeOffset? CancelledAt { get; set; }
        public bool Paused { get; set; }

        /// <summary>The relay's reply that refused the campaign's sender; null when not held.</summary>
        public string? HeldReason { get; set; }

        public DateTimeOffset? HeldAt { get; set; }

        public DateTimeOffset? ResumedAt { get; set; }

        /// <summary>The subject template and the From mailbox as posted: what a person knows the campaign by.</summary>
        public string? Subject { get; set; }

        public string? From { get; set; }

        /// <summary>Whose campaign it is (<see cref="OutcomeEvent.Tenant"/>); null when posted without keys or before tenants were recorded.</summary>
        public string? Tenant { get; set; }

        /// <summary>The highest recipient index ever marked done: a reopened finished campaign needs its bits up to here.</summary>
        private int highestIndex = -1;

        /// <summary>Goes up with every change, so a watcher can tell whether there is news.</summary>
        public long Version { get; set; }

        public void Control(OutcomeType type, DateTimeOffset at, string? reason)
        {
            if (CompletedAt is not null || CancelledAt is not null)
            {
                return; // a finished campaign stays as it finished
            }

            switch (type)
            {
                case OutcomeType.Paused:
                    Paused = true;
                    break;
                case OutcomeType.Resumed:
                    ResumedAt = at;
                    Paused = false;
                    HeldReason = null;
                    HeldAt = null;
                    break;
                case OutcomeType.Held:
                    // Several Workers may each find the relay refusing: the first reply stays.
                    HeldReason ??= string.IsNullOrWhiteSpace(reason) ? "the relay refused the sender" : reason;
                    HeldAt ??= at;
                    break;
                case OutcomeType.Cancelled:
                    CancelledAt = at;
                    Paused = false;
                    HeldReason = null;
                    HeldAt = null;
                    DeferredNow.Clear();
                    break;
            }

            Version++;
        }

        public bool IsDone(int index) =>
            CompletedAt is not null || (done is not null && index >= 0 && index < done.Length && done[index]);

        /// <summary>Sets the recipient's done bit; false when it was already set.</summary>
        public bool MarkDone(int index)
        {
            if (index < 0 || IsDone(index))
            {
                return false;
            }

            done ??= new BitArray(Math.Max(Total, index + 1));
            if (index >= done.Length)
            {
                done.Length = index + 1;
            }

            done[index] = true;
            highestIndex = Math.Max(highestIndex, index);
            DeferredNow.Remove(index);
            return true;
        }

        /// <summary>A finished campaign needs no bits: every recipient is done.</summary>
        public void Compact()
        {
            done = null;
            DeferredNow.Clear();
        }

        /// <summary>Dead-lettered recipients go back to pending when an operator replays them.</summary>
        /// <remarks>Not those of a cancelled campaign: nothing of it is sent again, so its failures stay failures. (A
        /// Worker drops such a job unsent; before that was so, it had reopened them first, and a cancelled campaign
        /// lost failures for good.)</remarks>
        /// <returns>Whether any was reopened.</returns>
        public bool Reopen(IEnumerable<int> indexes)
        {
            if (CancelledAt is not null)
            {
                return false;
            }

            var reopened = false;
            foreach (var index in indexes)
            {
                if (!Failures.Remove(index))
                {
                    continue;
                }

                reopened = true;

                if (CompletedAt is not null)
                {
                    // Indexes are positions as posted, so with duplicates dropped they run past Total.
                    done = new BitArray(Math.Max(Total, highestIndex + 1), true);
                    CompletedAt = null;
                }

                if (done is not null && index < done.Length)
                {
                    done[index] = false;
                }

                Failed--;
            }

            return reopened;
        }

        public void WriteTo(BinaryWriter writer, ReplyTemplates replies)
        {
            writer.Write(Id);
            writer.Write(Total);
            writer.Write(Delivered);
            writer.Write(Failed);
            writer.Write(Suppressed);
            foreach (var at in (DateTimeOffset?[])[CreatedAt, FirstDeliveryAt, LastDeliveryAt, CompletedAt, CancelledAt, HeldAt, ResumedAt])
            {
                Snapshots.WriteNullable(writer, at);
            }

            writer.Write(Paused);
            Snapshots.WriteNullable(writer, HeldReason);
            writer.Write(Version);
            writer.Write(highestIndex);
            writer.Write(DeferredNow.Count);
            foreach (var index in DeferredNow)
            {
                writer.Write(index);
            }

            writer.Write(Failures.Count);
            foreach (var failure in Failures.InOrder(replies))
            {
                writer.Write(failure.Index);
                writer.Write(failure.Email);
                writer.Write(failure.Reply);
                writer.Write(failure.DeadLettered);
            }

            writer.Write(done?.Length ?? -1);
            if (done is not null)
            {
                var words = new int[(done.Length + 31) / 32];
                done.CopyTo(words, 0);
                foreach (var word in words)
                {
                    writer.Write(word);
                }
            }

            Snapshots.WriteNullable(writer, Subject);
            Snapshots.WriteNullable(writer, From);
            Snapshots.WriteNullable(writer, Tenant);
        }

        /// <param name="format">The snapshot's format: <see cref="SnapshotFormat"/> or an earlier one.</param>
        public static Campaign ReadFrom(BinaryReader reader, ReplyTemplates replies, int format)
        {
            var campaign = new Campaign(reader.ReadString(), reader.ReadInt32())
            {
                Delivered = reader.ReadInt32(),
                Failed = reader.ReadInt32(),
                Suppressed = reader.ReadInt32(),
                CreatedAt = Snapshots.ReadNullableTime(reader),
                FirstDeliveryAt = Snapshots.ReadNullableTime(reader),
                LastDeliveryAt = Snapshots.ReadNullableTime(reader),
                CompletedAt = Snapshots.ReadNullableTime(reader),
                CancelledAt = Snapshots.ReadNullableTime(reader),
                HeldAt = Snapshots.ReadNullableTime(reader),
                ResumedAt = Snapshots.ReadNullableTime(reader),
                Paused = reader.ReadBoolean(),
                HeldReason = Snapshots.ReadNullable(reader),
                Version = reader.ReadInt64(),
            };
            campaign.highestIndex = reader.ReadInt32();
            for (var n = reader.ReadInt32(); n > 0; n--)
            {
                campaign.DeferredNow.Add(reader.ReadInt32());
            }

            for (var n = reader.ReadInt32(); n > 0; n--)
            {
                var failure = new FailedRecipient(reader.ReadInt32(), reader.ReadString(), reader.ReadString(), reader.ReadBoolean());
                campaign.Failures.Add(failure, replies);
            }

            var length = reader.ReadInt32();
            if (length >= 0)
            {
                var words = new int[(length + 31) / 32];
                for (var i = 0; i < words.Length; i++)
                {
                    words[i] = reader.ReadInt32();
                }

                campaign.done = new BitArray(words) { Length = length };
            }

            if (format >= 2)
            {
                campaign.Subject = Snapshots.ReadNullable(reader);
                campaign.From = Snapshots.ReadNullable(reader);
            }

            if (format >= 3)
            {
                // Campaigns of an earlier snapshot have none: only an admin key sees them (see TenantView).
                campaign.Tenant = Snapshots.ReadNullable(reader);
            }

            return campaign;
        }

        public string Status => (Delivered + Failed + Suppressed, CompletedAt) switch
        {
            _ when CancelledAt is not null => Statuses.Cancelled,
            (_, not null) when Failed > 0 => Statuses.CompletedWithFailures,
            (_, not null) => Statuses.Completed,
            _ when HeldReason is not null => Statuses.Held,
            _ when Paused => Statuses.Paused,
            (0, _) when DeferredNow.Count == 0 => Statuses.Queued,
            _ => Statuses.Sending,
        };

        public CampaignStatus Snapshot()
        {
            var status = Status;
            var end = CompletedAt ?? LastDeliveryAt;
            var seconds = FirstDeliveryAt is { } first && end is { } last ? (last - first).TotalSeconds : 0;
            var rate = seconds > 0 ? Math.Round(Delivered / seconds, 1) : 0;
            return new CampaignStatus(Id, status, Total, Delivered, Failed, DeferredNow.Count,
                Math.Max(0, Total - Delivered - Failed - Suppressed), CreatedAt, FirstDeliveryAt, CompletedAt, rate, CancelledAt, Version, Suppressed,
                HeldReason, HeldAt, ResumedAt, Subject, From);
        }
    }
}
