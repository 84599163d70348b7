using Microsoft.Extensions.Options;

namespace Bulk.Front.Campaigns;

/// <summary>
/// The memory that campaigns being read, checked and published may hold together (<c>Front__MaxIntakeMemoryBytes</c>):
/// each <c>POST /campaigns</c> holds what the bytes of body it has received cost, grows its reservation as more arrive,
/// and gives it back when it ends.
/// </summary>
/// <remarks>
/// <para>The Front holds a campaign whole until the broker has confirmed it (one message per campaign is what keeps it
/// from being half enqueued), so what concurrent POSTs cost adds up; the rate limit alone lets 60 of the largest arrive
/// at once.</para>
/// <para>A POST holds what it has received, rounded up to a step, never what it might send: an upload that trickles
/// costs the budget one step, not 20 times the largest body allowed (issue #24). What a Content-Length promises counts
/// as well, as a <em>claim</em> on the budget, for as long as the upload keeps the pace that would bring the whole body
/// within <c>Front__BodyDeadlineSeconds</c>: twenty campaigns posted at once are not all admitted only to be refused
/// half read, while an upload that promises 64 MiB and trickles loses its claim within a second. A claim lost is not
/// regained.</para>
/// <para>A POST is admitted when what it promises (a first step when chunked) fits beside the others' claims, and
/// always when nothing else holds any of the budget: a campaign allowed by the body limit is never refused forever, it
/// is only made to come alone. A reservation grows while it fits beside the others' claims, or alone; a POST whose
/// growth does not fit (a chunked one, or one that lost its claim) is refused (503) and gives back what it held, so one
/// of them always goes on.</para>
/// </remarks>
public sealed class IntakeMemoryBudget(IOptions<FrontOptions> options, TimeProvider time)
{
    /// <summary>
    /// What the Front holds at its peak per byte of a campaign's body, for the costliest campaign per byte the limits
    /// allow: many recipients with many small <c>data</c> values (an 18 MB body of 100,000 recipients with 10 values
    /// each costs about 374 MB, see docs/benchmarks.md). Strings are held as UTF-16, each value as an object, the
    /// job once more as the message to publish. Long text costs less per byte; whitespace next to nothing.
    /// </summary>
    public const long CostPerBodyByte = 20;

    /// <summary>
    /// Body bytes a reservation grows by: a POST holds what it received rounded up to this. 64 KiB (1.3 MB of budget)
    /// takes the lock about a thousand times for the largest body, and is what a trickling upload holds.
    /// </summary>
    public const long StepBytes = 64 * 1024;

    private readonly Lock gate = new();
    private readonly List<IntakeReservation> holders = [];
    private long reserved;

    /// <summary>The whole budget, in bytes.</summary>
    public long Total => options.Value.MaxIntakeMemoryBytes;

    /// <summary>Bytes reserved by the POSTs under way: what the bodies they have received cost.</summary>
    public long Reserved
    {
        get
        {
            lock (gate)
            {
                return reserved;
            }
        }
    }

    /// <summary>
    /// Admits a POST before its body is read: its reservation holds the first step of the body (or the whole body when it
    /// is smaller), or null when what its Content-Length promises does not fit beside the others' claims. A body over
    /// <c>Front__MaxBodyBytes</c> is admitted holding nothing, since Kestrel refuses it before it is read.
    /// </summary>
    public IntakeReservation? TryAdmit(long? contentLength)
    {
        var max = options.Value.MaxBodyBytes;
        var limit = contentLength ?? max;
        if (limit > max)
        {
            return TryReserve(0, null, limitBytes: 0);
        }

        // A chunked body may end anywhere up to the limit: only what it sends counts, from its first step on.
        return TryReserve(Math.Min(limit, StepBytes) * CostPerBodyByte, contentLength, limit);
    }

    /// <summary>Reserves <paramref name="bytes"/> for good, or returns null when they do not fit beside what others hold.</summary>
    /// <returns>A reservation to dispose when the POST ends, whatever its end; disposing it twice gives back once.</returns>
    public IntakeReservation? TryReserve(long bytes) => TryReserve(bytes, null, options.Value.MaxBodyBytes);

    private IntakeReservation? TryReserve(long bytes, long? promised, long limitBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (gate)
        {
            var now = time.GetTimestamp();
            if (holders.Count > 0 && ClaimedBy(null, now) + Math.Max(bytes, (promised ?? 0) * CostPerBodyByte) > Total)
            {
                return null;
            }

            var reservation = new IntakeReservation(this, bytes, promised, limitBytes, now);
            reserved += bytes;
            holders.Add(reservation);
            return reservation;
        }
    }

    /// <summary>Grows <paramref name="reservation"/> to <paramref name="bytes"/>, for <paramref name="received"/> bytes
    /// of body, if that fits beside the others' claims or it is the only one held.</summary>
    internal bool TryGrow(IntakeReservation reservation, long bytes, long received)
    {
        lock (gate)
        {
            if (reservation.Released)
            {
                return false;
            }

            reservation.Received = received;
            var more = bytes - reservation.Held;
            if (more <= 0)
            {
                return true;
            }

            if (holders.Count > 1 && ClaimedBy(reservation, time.GetTimestamp()) + bytes > Total)
            {
                return false;
            }

            reserved += more;
            reservation.Held = bytes;
            return true;
        }
    }

    internal void Release(IntakeReservation reservation)
    {
        lock (gate)
        {
            if (reservation.Released)
            {
                return;
            }

            reservation.Released = true;
            reserved -= reservation.Held;
            holders.Remove(reservation);
        }
    }

    /// <summary>What every reservation but <paramref name="except"/> claims: what it holds, or what its Content-Length
    /// promises while it keeps the pace of its deadline.</summary>
    private long ClaimedBy(IntakeReservation? except, long now)
    {
        var deadline = TimeSpan.FromSeconds(options.Value.BodyDeadlineSeconds);
        long claimed = 0;
        foreach (var holder in holders)
        {
            if (holder != except)
            {
                claimed += holder.Claim(time.GetElapsedTime(holder.Started, now) / deadline);
            }
        }

        return claimed;
    }
}

/// <summary>What one POST holds of the <see cref="IntakeMemoryBudget"/>: the cost of the body it has received so far.</summary>
/// <remarks>Its state changes only under the budget's lock.</remarks>
public sealed class IntakeReservation : IDisposable
{
    private readonly IntakeMemoryBudget budget;
    private readonly long? promised;
    private readonly long limitBytes;
    private bool paceLost;

    internal IntakeReservation(IntakeMemoryBudget budget, long bytes, long? promised, long limitBytes, long started)
    {
        this.budget = budget;
        this.promised = promised;
        this.limitBytes = limitBytes;
        Held = bytes;
        Started = started;
    }

    /// <summary>Budget bytes held.</summary>
    internal long Held { get; set; }

    /// <summary>Body bytes received.</summary>
    internal long Received { get; set; }

    internal long Started { get; }

    internal bool Released { get; set; }

    /// <summary>
    /// Grows the reservation to cover <paramref name="bodyBytes"/> received (rounded up to
    /// <see cref="IntakeMemoryBudget.StepBytes"/>, at most the body's declared or largest size); false when that does
    /// not fit beside the others' claims (or the reservation was given back), and the POST must give up.
    /// </summary>
    public bool TryCover(long bodyBytes)
    {
        var stepped = (bodyBytes + IntakeMemoryBudget.StepBytes - 1) / IntakeMemoryBudget.StepBytes * IntakeMemoryBudget.StepBytes;
        return budget.TryGrow(this, Math.Max(bodyBytes, Math.Min(stepped, limitBytes)) * IntakeMemoryBudget.CostPerBodyByte, bodyBytes);
    }

    /// <summary>Gives the reservation back; disposing it twice gives back once.</summary>
    public void Dispose() => budget.Release(this);

    /// <summary>
    /// What it holds, or what its Content-Length promises while it is on course to arrive whole within its deadline
    /// (a step of slack): <paramref name="deadlineSpent"/> is the share of the deadline gone by.
    /// </summary>
    internal long Claim(double deadlineSpent)
    {
        if (promised is not { } promise || paceLost)
        {
            return Held;
        }

        if (Received + IntakeMemoryBudget.StepBytes < promise * deadlineSpent)
        {
            paceLost = true;
            return Held;
        }

        return Math.Max(Held, promise * IntakeMemoryBudget.CostPerBodyByte);
    }
}
