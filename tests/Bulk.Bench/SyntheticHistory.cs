using System.Globalization;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;

namespace Bulk.Bench;

/// <summary>
/// A month of made-up but lifelike history for the two streams, in their real entries: the same entries every time
/// for the same <paramref name="end"/>, so they can be written to the broker and folded in process alike.
/// </summary>
/// <remarks>
/// Outcomes: campaigns of <see cref="Recipients"/> recipients, each an <c>accepted</c> entry, then one <c>progress</c>
/// entry per mail (a trickle, the most entries a mail can cost), 1.5 % of them failed with a 5.1.1; a few campaigns
/// paused and resumed, held and resumed, or cancelled; 5 % posted with an Idempotency-Key. <see cref="Lanes"/>
/// campaigns run at once, one per lane; a lane is written in order on a channel of its own, so the stream holds the
/// lanes interleaved and each campaign's entries in order, and the last campaign of each lane is left in progress.
/// Suppressions: mostly single unsubscribes, a fifth hard bounces with the relay's reply, 5 % in operators' lists of
/// 10,000 (one entry each, as <c>POST /suppressions</c> writes them), and 1 % taken off the list again (one entry each).
/// Timestamps run evenly over <see cref="Span"/> ending at <paramref name="end"/>, as planned for the largest size.
/// </remarks>
/// <param name="plannedOutcomes">The most outcome entries a run writes: the last of them is dated <paramref name="end"/>.</param>
/// <param name="plannedAddresses">The most suppressed addresses a run writes.</param>
internal sealed class SyntheticHistory(DateTimeOffset end, long plannedOutcomes, long plannedAddresses)
{
    public const int Lanes = 4;
    public const int Recipients = 1000;
    public const int OperatorListSize = 10_000; // the Front's MaxPerRequest
    public static readonly TimeSpan Span = TimeSpan.FromDays(30);

    private const double FailureRate = 0.015;
    private const string HeldReply = "554 5.7.1 <news@example.com>: Sender address rejected: Access denied";

    private readonly DateTimeOffset start = end - Span;

    /// <summary>The first <paramref name="count"/> outcome entries, lane by lane in turn: entry i is lane i % Lanes's entry i / Lanes.</summary>
    /// <remarks>The broker holds the same entries per lane in the same order; how the lanes interleave there depends on the
    /// publishing, which a fold does not see (it is per campaign) beyond the order in which campaigns first appear.</remarks>
    public IEnumerable<OutcomeEvent> Outcomes(long count)
    {
        var lanes = Enumerable.Range(0, Lanes).Select(lane => OutcomeLane(lane).GetEnumerator()).ToArray();
        try
        {
            for (long i = 0; i < count; i++)
            {
                var lane = lanes[i % Lanes];
                lane.MoveNext();
                yield return lane.Current;
            }
        }
        finally
        {
            Array.ForEach(lanes, lane => lane.Dispose());
        }
    }

    /// <summary>How many of the first <paramref name="count"/> entries fall in <paramref name="lane"/>.</summary>
    public static long LaneShare(long count, int lane) => count / Lanes + (lane < count % Lanes ? 1 : 0);

    /// <summary>One lane's entries, without end: campaign after campaign, each finished before the next is accepted.</summary>
    public IEnumerable<OutcomeEvent> OutcomeLane(int lane)
    {
        var perEntry = Span / Math.Max(1, plannedOutcomes / Lanes);
        long position = 0;
        for (long campaign = lane; ; campaign += Lanes)
        {
            var random = new Random(unchecked((int)(campaign * 2_654_435_761L)));
            var id = new Guid(RandomBytes(random, 16)).ToString("N");
            var key = random.NextDouble() < 0.05 ? $"order-{campaign}" : null;
            yield return new OutcomeEvent(OutcomeType.Accepted, id, start + perEntry * position++, Recipients, key,
                key is null ? null : Convert.ToHexStringLower(RandomBytes(random, 32)));

            var control = random.NextDouble();
            var at = random.Next(Recipients / 4, Recipients * 3 / 4);
            for (var i = 0; i < Recipients; i++)
            {
                if (i == at)
                {
                    if (control < 0.01)
                    {
                        yield return new OutcomeEvent(OutcomeType.Cancelled, id, start + perEntry * position++, Recipients);
                        break; // the rest is dropped unsent
                    }

                    if (control < 0.03)
                    {
                        yield return new OutcomeEvent(OutcomeType.Paused, id, start + perEntry * position++, Recipients);
                        yield return new OutcomeEvent(OutcomeType.Resumed, id, start + perEntry * position++, Recipients);
                    }
                    else if (control < 0.035)
                    {
                        yield return new OutcomeEvent(OutcomeType.Held, id, start + perEntry * position++, Recipients, Reason: HeldReply);
                        yield return new OutcomeEvent(OutcomeType.Resumed, id, start + perEntry * position++, Recipients);
                    }
                }

                var when = start + perEntry * position++;
                if (random.NextDouble() < FailureRate)
                {
                    var email = $"user{i}@mail{campaign % 997}.example.org";
                    yield return new OutcomeEvent(OutcomeType.Progress, id, when, Recipients,
                        Failed: [new FailedRecipient(i, email, $"550 5.1.1 <{email}>: Recipient address rejected: User unknown in virtual mailbox table")]);
                }
                else
                {
                    yield return new OutcomeEvent(OutcomeType.Progress, id, when, Recipients, Delivered: [i]);
                }
            }
        }
    }

    /// <summary>[<paramref name="from"/>, <paramref name="to"/>) cut into <paramref name="lanes"/> ranges in a row, one per publishing channel.</summary>
    public static List<(long From, long To)> SuppressionRanges(long from, long to, int lanes) =>
        [.. Enumerable.Range(0, lanes).Select(i => (from + (to - from) * i / lanes, from + (to - from) * (i + 1) / lanes)).Where(r => r.Item2 > r.Item1)];

    /// <summary>The entries that suppress addresses [<paramref name="from"/>, <paramref name="to"/>), and take 1 % of them off the list again.</summary>
    /// <remarks>An operator's list that would run past <paramref name="to"/> is cut there.</remarks>
    public IEnumerable<SuppressionEvent> Suppressions(long from, long to)
    {
        var perAddress = Span / Math.Max(1, plannedAddresses);
        var address = from;
        while (address < to)
        {
            var random = new Random(unchecked((int)(address * 2_654_435_761L)));
            var at = start + perAddress * address;
            var campaign = new Guid(RandomBytes(random, 16)).ToString("N");
            // Every 200,000th address starts an operator's list (one entry), cut short where the size ends.
            if (address % 200_000 == 100_000)
            {
                var count = (int)Math.Min(OperatorListSize, to - address);
                var emails = Enumerable.Range(0, count).Select(n => Address(address + n)).ToList();
                yield return new SuppressionEvent(SuppressionType.Suppressed, emails[0], at, SuppressionReasons.Operator,
                    Detail: "complaints forwarded by the list owner", MoreEmails: emails.Count > 1 ? emails[1..] : null);
                address += count;
                continue;
            }

            var email = Address(address);
            yield return random.NextDouble() < 0.2
                ? new SuppressionEvent(SuppressionType.Suppressed, email, at, SuppressionReasons.HardBounce, campaign,
                    $"550 5.1.1 <{email}>: Recipient address rejected: User unknown in virtual mailbox table")
                : new SuppressionEvent(SuppressionType.Suppressed, email, at, SuppressionReasons.Unsubscribed, campaign);
            // Taken off again: an address earlier in the same range, so that it was written before on the same channel.
            if (address > from && random.NextDouble() < 0.01)
            {
                yield return new SuppressionEvent(SuppressionType.Unsuppressed, Address(random.NextInt64(from, address)), at);
            }

            address++;
        }
    }

    private static string Address(long n) => string.Create(CultureInfo.InvariantCulture, $"reader{n}@mail{n % 1009}.example.net");

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
