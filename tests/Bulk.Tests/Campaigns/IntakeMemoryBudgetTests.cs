using Bulk.Front;
using Bulk.Front.Campaigns;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// The intake memory budget's accounting: a reservation is granted while it fits or while nothing else holds any,
/// each is given back once however often it is disposed, and nothing is left reserved once every POST has ended.
/// </summary>
public sealed class IntakeMemoryBudgetTests
{
    private const long Total = 1000;

    private static IntakeMemoryBudget Budget(long total = Total, long maxBody = 1024, TimeProvider? clock = null) =>
        new(Options.Create(new FrontOptions { MaxIntakeMemoryBytes = total, MaxBodyBytes = maxBody, BodyDeadlineSeconds = 100 }), clock ?? new Clock());

    [Fact]
    public void AReservationIsGrantedWhileItFits_AndRefusedWhenItWouldNot()
    {
        var budget = Budget();

        using var first = budget.TryReserve(600);
        using var second = budget.TryReserve(400);
        var third = budget.TryReserve(1);

        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(third);
        Assert.Equal(Total, budget.Reserved);
    }

    [Fact]
    public void AReservationLargerThanTheWholeBudget_IsGrantedAlone_AndHoldsOffEveryOther()
    {
        var budget = Budget();

        var alone = budget.TryReserve(Total * 5);
        var beside = budget.TryReserve(1);
        Assert.NotNull(alone);
        Assert.Null(beside);

        var alsoTooLarge = budget.TryReserve(Total * 5);
        Assert.Null(alsoTooLarge);

        alone.Dispose();
        using var next = budget.TryReserve(Total * 5);
        Assert.NotNull(next);
    }

    [Fact]
    public void DisposingAReservationTwice_GivesItBackOnce()
    {
        var budget = Budget();
        using var other = budget.TryReserve(500);
        var twice = budget.TryReserve(300)!;

        twice.Dispose();
        twice.Dispose();

        Assert.Equal(500, budget.Reserved);
        Assert.NotNull(budget.TryReserve(500));
    }

    [Fact]
    public async Task ManyConcurrentReservations_NeverHoldMoreThanTheBudget_AndLeaveItWholeOnceEnded()
    {
        var budget = Budget();
        var over = 0;
        var granted = 0;
        var refused = 0;

        // More at once than the budget holds (16 × up to 400 against 1000), each holding its reservation a moment.
        await Parallel.ForAsync(0, 4_000, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            using var reservation = budget.TryReserve(100 + (i % 7) * 50);
            if (reservation is null)
            {
                Interlocked.Increment(ref refused);
                return;
            }

            Interlocked.Increment(ref granted);
            if (budget.Reserved > Total)
            {
                Interlocked.Increment(ref over);
            }

            await Task.Delay(1);
        });

        Assert.Equal(0, over);
        Assert.True(granted > 0 && refused > 0, $"granted {granted}, refused {refused}: the budget was not contended");
        Assert.Equal(0, budget.Reserved);
        Assert.NotNull(budget.TryReserve(Total));
    }

    /// <summary>The budget cost of one step of body.</summary>
    private const long Step = IntakeMemoryBudget.StepBytes * IntakeMemoryBudget.CostPerBodyByte;

    [Fact]
    public void AChunkedUpload_IsAdmittedHoldingOneStep_AndGrowsStepByStepWithTheBytesReceived()
    {
        var budget = Budget(total: 100 * Step, maxBody: 64 * IntakeMemoryBudget.StepBytes);

        using var chunked = budget.TryAdmit(contentLength: null)!;
        Assert.Equal(Step, budget.Reserved); // not the 64 steps of the largest body allowed

        Assert.True(chunked.TryCover(1));
        Assert.True(chunked.TryCover(IntakeMemoryBudget.StepBytes));
        Assert.Equal(Step, budget.Reserved);
        Assert.True(chunked.TryCover(IntakeMemoryBudget.StepBytes + 1));
        Assert.Equal(2 * Step, budget.Reserved);
        Assert.True(chunked.TryCover(10 * IntakeMemoryBudget.StepBytes));
        Assert.Equal(10 * Step, budget.Reserved);
        Assert.True(chunked.TryCover(3), "a reservation never shrinks while its POST is under way");
        Assert.Equal(10 * Step, budget.Reserved);

        chunked.Dispose();
        Assert.Equal(0, budget.Reserved);
    }

    [Fact]
    public void AnUploadWithAContentLength_HoldsWhatItReceived_AndNoMoreThanItsLength()
    {
        var budget = Budget(total: 100 * Step, maxBody: 64 * IntakeMemoryBudget.StepBytes);
        const long Length = (3 * IntakeMemoryBudget.StepBytes) + 10;

        using var small = budget.TryAdmit(1000)!;
        Assert.Equal(1000 * IntakeMemoryBudget.CostPerBodyByte, budget.Reserved);
        small.Dispose();

        using var upload = budget.TryAdmit(Length)!;
        Assert.Equal(Step, budget.Reserved);
        Assert.True(upload.TryCover(Length));
        Assert.Equal(Length * IntakeMemoryBudget.CostPerBodyByte, budget.Reserved);
    }

    [Fact]
    public void APostIsAdmittedWhenItsContentLengthsCostFitsBesideWhatOthersHold_AndABodyOverTheLimitHoldsNothing()
    {
        var budget = Budget(total: 10 * Step, maxBody: 64 * IntakeMemoryBudget.StepBytes);
        using var other = budget.TryReserve(6 * Step)!;

        Assert.Null(budget.TryAdmit(5 * IntakeMemoryBudget.StepBytes));
        using var fits = budget.TryAdmit(4 * IntakeMemoryBudget.StepBytes);
        Assert.NotNull(fits);
        Assert.Equal(7 * Step, budget.Reserved); // its first step only: it has sent nothing yet

        using var refusedUnread = budget.TryAdmit((64 * IntakeMemoryBudget.StepBytes) + 1);
        Assert.NotNull(refusedUnread);
        Assert.Equal(7 * Step, budget.Reserved);
    }

    [Fact]
    public void AGrowthThatDoesNotFitBesideOthers_IsRefused_UntilTheReservationIsAlone()
    {
        var budget = Budget(total: 4 * Step, maxBody: 64 * IntakeMemoryBudget.StepBytes);
        var first = budget.TryAdmit(null)!;
        using var second = budget.TryAdmit(null)!;

        Assert.True(second.TryCover(3 * IntakeMemoryBudget.StepBytes));
        Assert.False(second.TryCover(4 * IntakeMemoryBudget.StepBytes));
        Assert.Equal(4 * Step, budget.Reserved);

        // Alone, it grows past the whole budget: the largest body allowed is always read, one at a time.
        first.Dispose();
        Assert.True(second.TryCover(20 * IntakeMemoryBudget.StepBytes));
        Assert.Equal(20 * Step, budget.Reserved);
        Assert.Null(budget.TryAdmit(1));
        Assert.False(first.TryCover(1), "a reservation given back does not grow again");
    }

    [Fact]
    public void WhatAContentLengthPromisesIsClaimedWhileTheUploadKeepsPace_AndLostForGoodOnceItFallsBehind()
    {
        var clock = new Clock();
        var budget = Budget(total: 10 * Step, maxBody: 64 * IntakeMemoryBudget.StepBytes, clock: clock);

        // A promises 6 steps and holds 1: B's 5 do not fit beside A's promise, so B is refused before it is read.
        using var a = budget.TryAdmit(6 * IntakeMemoryBudget.StepBytes)!;
        Assert.Equal(Step, budget.Reserved);
        Assert.Null(budget.TryAdmit(5 * IntakeMemoryBudget.StepBytes));
        using var chunked = budget.TryAdmit(null);
        Assert.NotNull(chunked);

        // Half its deadline (100 s) gone with one byte of six steps received: A is behind, and claims what it holds.
        Assert.True(a.TryCover(1));
        clock.Advance(TimeSpan.FromSeconds(50));
        using var b = budget.TryAdmit(5 * IntakeMemoryBudget.StepBytes);
        Assert.NotNull(b);
        Assert.Equal(3 * Step, budget.Reserved);

        // Catching up does not win the promise back: beside B's promise and the chunked one's step, A may hold 4 steps, not 6.
        Assert.True(a.TryCover(4 * IntakeMemoryBudget.StepBytes));
        Assert.False(a.TryCover(5 * IntakeMemoryBudget.StepBytes));
    }

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class Clock : TimeProvider
    {
        private long ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => ticks;

        public void Advance(TimeSpan by) => ticks += by.Ticks;
    }
}
