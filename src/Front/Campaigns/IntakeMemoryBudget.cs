using Microsoft.Extensions.Options;

namespace Bulk.Front.Campaigns;

/// <summary>
/// The memory that campaigns being read, checked and published may hold together (<c>Front__MaxIntakeMemoryBytes</c>):
/// each <c>POST /campaigns</c> reserves its estimate before its body is read and gives it back when it ends.
/// </summary>
/// <remarks>
/// The Front holds a campaign whole until the broker has confirmed it (one message per campaign is what keeps it from
/// being half enqueued), so what concurrent POSTs cost adds up; the rate limit alone lets 60 of the largest arrive at once.
/// A POST is admitted while its estimate fits in what is left, and always when nothing else holds any of the budget:
/// a campaign allowed by the body limit is never refused forever, it is only made to come alone.
/// </remarks>
public sealed class IntakeMemoryBudget(IOptions<FrontOptions> options)
{
    /// <summary>
    /// What the Front holds at its peak per byte of a campaign's body, for the costliest campaign per byte the limits
    /// allow: many recipients with many small <c>data</c> values (an 18 MB body of 100,000 recipients with 10 values
    /// each costs about 374 MB, see docs/benchmarks.md). Strings are held as UTF-16, each value as an object, the
    /// job once more as the message to publish. Long text costs less per byte; whitespace next to nothing.
    /// </summary>
    public const long CostPerBodyByte = 20;

    private readonly Lock gate = new();
    private long reserved;
    private int holders;

    /// <summary>The whole budget, in bytes.</summary>
    public long Total => options.Value.MaxIntakeMemoryBytes;

    /// <summary>Bytes reserved by the POSTs under way.</summary>
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

    /// <summary>What a POST is estimated to cost from its <c>Content-Length</c>, or from the largest body allowed when it
    /// gave none (chunked): a body over <c>Front__MaxBodyBytes</c> costs nothing, since it is refused before it is read.</summary>
    public long EstimateFor(long? contentLength)
    {
        var max = options.Value.MaxBodyBytes;
        var bytes = contentLength ?? max;
        return bytes > max ? 0 : bytes * CostPerBodyByte;
    }

    /// <summary>Reserves <paramref name="bytes"/>, or returns null when they do not fit beside what others hold.</summary>
    /// <returns>A reservation to dispose when the POST ends, whatever its end; disposing it twice gives back once.</returns>
    public IDisposable? TryReserve(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (gate)
        {
            if (holders > 0 && reserved + bytes > Total)
            {
                return null;
            }

            reserved += bytes;
            holders++;
        }

        return new Reservation(this, bytes);
    }

    private void Release(long bytes)
    {
        lock (gate)
        {
            reserved -= bytes;
            holders--;
        }
    }

    private sealed class Reservation(IntakeMemoryBudget budget, long bytes) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                budget.Release(bytes);
            }
        }
    }
}
