using System.Diagnostics;
using Bulk.Broker.Streams;
using Bulk.Broker.Suppressions;
using Bulk.Contracts.Suppressions;
using Xunit.Abstractions;

namespace Bulk.Tests.Outcomes;

/// <summary>A snapshot is written out and compressed outside the fold's locks: a Worker checking the suppression list
/// before each send is held up only while the list is copied, not while the snapshot is made.</summary>
public sealed class SnapshotLockTests(ITestOutputHelper output)
{
    private const int Addresses = 1_000_000;

    [Fact]
    public void AMillionSuppressions_AreCopiedForASnapshot_WrittenOutWithTheListFree_AndReadBackWhole()
    {
        var list = new SuppressionList();
        var at = DateTimeOffset.Parse("2026-01-01T00:00:00Z");
        for (var i = 0; i < Addresses; i++)
        {
            var email = $"user{i:D7}@example.org";
            var campaign = $"{i % 5000:x32}";
            list.Apply(i % 5 == 0
                ? new SuppressionEvent(SuppressionType.Suppressed, email, at.AddSeconds(i), SuppressionReasons.HardBounce, campaign,
                    $"550 5.1.1 <{email}>: Recipient address rejected: User unknown in virtual mailbox table")
                : new SuppressionEvent(SuppressionType.Suppressed, email, at.AddSeconds(i), SuppressionReasons.Unsubscribed, campaign));
        }

        // A send's check, over and over, on another thread: the longest wait between two answers is the gap a send sees.
        long written = 0;
        var encoding = true;
        var answeredAfterWrite = 0;
        var longest = TimeSpan.Zero;
        var checker = new Thread(() =>
        {
            var last = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref encoding))
            {
                list.Find("user0000042@example.org");
                var now = Stopwatch.GetTimestamp();
                longest = TimeSpan.FromTicks(Math.Max(longest.Ticks, Stopwatch.GetElapsedTime(last, now).Ticks));
                last = now;
                if (Interlocked.Read(ref written) != 0)
                {
                    answeredAfterWrite++;
                }
            }
        });
        checker.Start();
        var started = Stopwatch.GetTimestamp();
        // As a snapshot is taken: the copy under the fold's lock, then written out and compressed with no lock held.
        var write = list.CopyForSnapshot();
        Interlocked.Exchange(ref written, Stopwatch.GetTimestamp());
        var data = SnapshotStore.Encode(0, write);
        var total = Stopwatch.GetElapsedTime(started);
        Volatile.Write(ref encoding, false);
        checker.Join();

        var copied = Stopwatch.GetElapsedTime(started, Interlocked.Read(ref written));
        output.WriteLine($"{Addresses:N0} suppressions: snapshot {data.Length / 1e6:F1} MB in {total.TotalMilliseconds:F0} ms " +
                         $"(copied out in {copied.TotalMilliseconds:F0} ms); the longest wait for a check was " +
                         $"{longest.TotalMilliseconds:F0} ms; {answeredAfterWrite:N0} checks answered while compressing");

        // Under the same load, side by side: how long the list's lock is held now (the copy), and how long it was held
        // when the snapshot was written and compressed from the list itself (what Encode given the list's own writer does).
        var now = new List<double>();
        var before = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var copy = Stopwatch.GetTimestamp();
            list.CopyForSnapshot();
            now.Add(Stopwatch.GetElapsedTime(copy).TotalMilliseconds);
            var whole = Stopwatch.GetTimestamp();
            SnapshotStore.Encode(0, list.WriteTo);
            before.Add(Stopwatch.GetElapsedTime(whole).TotalMilliseconds);
        }

        output.WriteLine($"the list's lock held for a snapshot, three rounds: {string.Join(", ", now.Select(t => $"{t:F0}"))} ms copying; " +
                         $"{string.Join(", ", before.Select(t => $"{t:F0}"))} ms writing and compressing the list itself");

        // Written out and compressed with the list free: checks went on meanwhile.
        Assert.True(answeredAfterWrite > 0, "no check was answered between the list's copy and the end of the snapshot");
        var read = new SuppressionList();
        SnapshotStore.Decode(data, read.ReadFrom);
        Assert.Equal(Addresses, read.Count);
        Assert.Equal(SuppressionReasons.HardBounce, read.Find("USER0000005@example.org")?.Reason);
    }
}
