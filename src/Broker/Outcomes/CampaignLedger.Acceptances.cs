using Bulk.Broker.Streams;
using Bulk.Contracts.Outcomes;

namespace Bulk.Broker.Outcomes;

/// <summary>Whether one submission of a campaign (an acceptance id) is to be sent, as the outcomes stream settles it.</summary>
public enum AcceptanceState
{
    /// <summary>Neither <c>started</c> (nor <c>accepted</c>) nor <c>voided</c> recorded yet: whoever needs to know writes one and reads back.</summary>
    Undecided,

    /// <summary>A Worker's <c>started</c>, or a Front's <c>accepted</c>, came first: its jobs are sent.</summary>
    Live,

    /// <summary>A Front's <c>voided</c> came first: its jobs are dropped unsent, whenever they turn up.</summary>
    Void,
}

/// <summary>One submission of a campaign under an <c>Idempotency-Key</c>, as its <c>pending</c> or <c>accepted</c> entry records it.</summary>
public sealed record IdempotentRequest(string CampaignId, string? RequestHash, int Total, int DuplicatesDropped, string? AcceptanceId);

/// <summary>A submission under a key, with what the stream has settled of it so far.</summary>
public sealed record KeySubmission(IdempotentRequest Request, AcceptanceState State);

/// <summary>What the stream remembers of one <c>Idempotency-Key</c> of one caller.</summary>
/// <param name="Accepted">The first <c>accepted</c> entry with the key: a Front answered 202 for it.</param>
/// <param name="Submissions">Every <c>pending</c> entry with the key, in stream order.</param>
public sealed record IdempotencyKeyRecord(IdempotentRequest? Accepted, IReadOnlyList<KeySubmission> Submissions);

// Idempotency keys and submissions: kept apart from the campaigns' counts, in plain fields (see Acceptances).
public sealed partial class CampaignLedger
{
    private readonly Acceptances acceptances = new();

    /// <summary>What the stream settled of a submission: the first of <c>started</c> (or <c>accepted</c>) and <c>voided</c> for it wins for good.</summary>
    public AcceptanceState Acceptance(string acceptanceId)
    {
        lock (stateLock)
        {
            return acceptances.Decided.TryGetValue(acceptanceId, out var live)
                ? live ? AcceptanceState.Live : AcceptanceState.Void
                : AcceptanceState.Undecided;
        }
    }

    /// <summary>What the stream holds of <paramref name="key"/> as used by the caller <paramref name="scope"/> (empty without API keys).</summary>
    public IdempotencyKeyRecord? FindKey(string scope, string key)
    {
        lock (stateLock)
        {
            if (!acceptances.Keys.TryGetValue((scope, key), out var entry))
            {
                return null;
            }

            return new IdempotencyKeyRecord(entry.Accepted, [.. entry.Pending.Select(p => new KeySubmission(p,
                p.AcceptanceId is { } id && acceptances.Decided.TryGetValue(id, out var live)
                    ? live ? AcceptanceState.Live : AcceptanceState.Void
                    : AcceptanceState.Undecided))]);
        }
    }

    /// <summary>The state this part of the ledger adds: small, and plain data, so that a snapshot can carry it.</summary>
    /// <remarks>Applied under the ledger's lock. Every entry may be applied twice (a tail re-reads): nothing changes.</remarks>
    private sealed class Acceptances
    {
        /// <summary>Per caller and key: its first <c>accepted</c> entry and its <c>pending</c> entries.</summary>
        public Dictionary<(string Scope, string Key), KeyEntry> Keys { get; } = [];

        /// <summary>Per acceptance id, which came first on the stream: <c>started</c> (true, live) or <c>voided</c> (false, void).</summary>
        public Dictionary<string, bool> Decided { get; } = new(StringComparer.Ordinal);

        /// <summary>Per acceptance id decided, its campaign: what goes when the campaign is forgotten.</summary>
        private readonly Dictionary<string, string> campaignOf = new(StringComparer.Ordinal);

        /// <summary>Per acceptance id decided, when (its deciding entry's time).</summary>
        private readonly Dictionary<string, DateTimeOffset> decidedAt = new(StringComparer.Ordinal);

        /// <summary>Drops what belongs to campaigns the ledger forgets (<see cref="CampaignLedger.Forget"/>), and void
        /// submissions settled before <paramref name="cutoff"/> whose campaign it does not hold.</summary>
        /// <param name="holds">Whether the ledger holds a campaign: a void submission of one (a retry went live) stays with it.</param>
        public void Forget(IReadOnlySet<string> campaigns, DateTimeOffset cutoff, Func<string, bool> holds)
        {
            foreach (var id in campaignOf.Where(c => campaigns.Contains(c.Value)).Select(c => c.Key).ToList())
            {
                Drop(id);
            }

            foreach (var key in Keys.Where(k => (k.Value.Accepted ?? k.Value.Pending.FirstOrDefault()) is { } request && campaigns.Contains(request.CampaignId))
                         .Select(k => k.Key).ToList())
            {
                Keys.Remove(key);
            }

            // A void submission is never sent, so it never makes a campaign that would be forgotten and take it along:
            // without this, every voided POST stayed in memory and in every snapshot for good.
            var stale = Decided.Where(d => !d.Value && decidedAt.TryGetValue(d.Key, out var at) && at < cutoff
                                           && !(campaignOf.TryGetValue(d.Key, out var campaign) && holds(campaign)))
                .Select(d => d.Key).ToHashSet(StringComparer.Ordinal);
            if (stale.Count == 0)
            {
                return;
            }

            // A key goes once every submission of it is stale; one that stays keeps its submissions' decisions, so
            // that it never shows a voided one as undecided (which a Worker could then start).
            foreach (var (scoped, entry) in Keys.ToList())
            {
                if (entry.Accepted is null && entry.Pending.Count > 0 && entry.Pending.TrueForAll(p => p.AcceptanceId is { } id && stale.Contains(id)))
                {
                    Keys.Remove(scoped);
                }
                else
                {
                    entry.Pending.ForEach(p => stale.Remove(p.AcceptanceId ?? ""));
                }
            }

            foreach (var id in stale)
            {
                Drop(id);
            }
        }

        private void Drop(string acceptanceId)
        {
            Decided.Remove(acceptanceId);
            campaignOf.Remove(acceptanceId);
            decidedAt.Remove(acceptanceId);
        }

        public void WriteTo(BinaryWriter writer)
        {
            writer.Write(Keys.Count);
            foreach (var ((scope, key), entry) in Keys)
            {
                writer.Write(scope);
                writer.Write(key);
                writer.Write(entry.Accepted is not null);
                if (entry.Accepted is { } accepted)
                {
                    Write(writer, accepted);
                }

                writer.Write(entry.Pending.Count);
                foreach (var pending in entry.Pending)
                {
                    Write(writer, pending);
                }
            }

            writer.Write(Decided.Count);
            foreach (var (id, live) in Decided)
            {
                writer.Write(id);
                writer.Write(live);
                writer.Write(campaignOf.GetValueOrDefault(id, ""));
                writer.Write(decidedAt.GetValueOrDefault(id, DateTimeOffset.MaxValue).UtcTicks);
            }
        }

        /// <summary>Replaces the state with what <see cref="WriteTo"/> wrote; empties it when <paramref name="reader"/> is null.</summary>
        /// <param name="format">The snapshot's format: before 3, it says not when a submission was settled, and the
        /// time of reading stands in (a void one is then forgotten a summary retention after the upgrade).</param>
        public void ReadFrom(BinaryReader? reader, int format)
        {
            Keys.Clear();
            Decided.Clear();
            campaignOf.Clear();
            decidedAt.Clear();
            if (reader is null)
            {
                return;
            }

            for (var n = reader.ReadInt32(); n > 0; n--)
            {
                var entry = new KeyEntry();
                Keys[(reader.ReadString(), reader.ReadString())] = entry;
                entry.Accepted = reader.ReadBoolean() ? Read(reader) : null;
                for (var p = reader.ReadInt32(); p > 0; p--)
                {
                    entry.Pending.Add(Read(reader));
                }
            }

            for (var n = reader.ReadInt32(); n > 0; n--)
            {
                var id = reader.ReadString();
                Decided[id] = reader.ReadBoolean();
                campaignOf[id] = reader.ReadString();
                decidedAt[id] = format >= 3 ? new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero) : DateTimeOffset.UtcNow;
            }
        }

        private static void Write(BinaryWriter writer, IdempotentRequest request)
        {
            writer.Write(request.CampaignId);
            Snapshots.WriteNullable(writer, request.RequestHash);
            writer.Write(request.Total);
            writer.Write(request.DuplicatesDropped);
            Snapshots.WriteNullable(writer, request.AcceptanceId);
        }

        private static IdempotentRequest Read(BinaryReader reader) =>
            new(reader.ReadString(), Snapshots.ReadNullable(reader), reader.ReadInt32(), reader.ReadInt32(), Snapshots.ReadNullable(reader));

        /// <summary>Applies an <c>accepted</c> entry; false when its submission is void, and the entry is to be ignored.</summary>
        /// <remarks>
        /// An <c>accepted</c> settles its submission as a <c>started</c> does: a Front whose write of it went unconfirmed
        /// writes <c>voided</c>, and whichever came first on the stream decides, so the submission is never void while
        /// its campaign is accepted (a campaign queued for good, with nothing to send). One that lands after the
        /// <c>voided</c> is ignored.
        /// </remarks>
        public bool Accepted(OutcomeEvent e)
        {
            if (e.AcceptanceId is { } id)
            {
                if (Decided.TryGetValue(id, out var live) && !live)
                {
                    return false;
                }

                if (Decided.TryAdd(id, true))
                {
                    campaignOf[id] = e.CampaignId;
                }
            }

            if (Entry(e) is { } entry)
            {
                // The first acceptance wins, as the first campaign did before keys had submissions.
                entry.Accepted ??= Request(e);
            }

            return true;
        }

        public void Apply(OutcomeEvent e)
        {
            switch (e.Type)
            {
                case OutcomeType.Pending when Entry(e) is { } entry:
                    if (!entry.Pending.Exists(p => p.AcceptanceId == e.AcceptanceId))
                    {
                        entry.Pending.Add(Request(e));
                    }

                    break;
                case OutcomeType.Started or OutcomeType.Voided when e.AcceptanceId is { } id:
                    if (Decided.TryAdd(id, e.Type == OutcomeType.Started))
                    {
                        campaignOf[id] = e.CampaignId;
                        decidedAt[id] = e.At;
                    }

                    break;
            }
        }

        private KeyEntry? Entry(OutcomeEvent e)
        {
            if (e.IdempotencyKey is not { } key)
            {
                return null;
            }

            // Entries of the version before keys had scopes have none: they belong to the empty scope (no API keys).
            var scoped = (e.KeyScope ?? "", key);
            if (!Keys.TryGetValue(scoped, out var entry))
            {
                entry = new KeyEntry();
                Keys[scoped] = entry;
            }

            return entry;
        }

        private static IdempotentRequest Request(OutcomeEvent e) =>
            new(e.CampaignId, e.RequestHash, e.Total, e.DuplicatesDropped, e.AcceptanceId);
    }

    private sealed class KeyEntry
    {
        public IdempotentRequest? Accepted { get; set; }

        public List<IdempotentRequest> Pending { get; } = [];
    }
}
