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

    private static IntakeMemoryBudget Budget(long total = Total, long maxBody = 1024) =>
        new(Options.Create(new FrontOptions { MaxIntakeMemoryBytes = total, MaxBodyBytes = maxBody }));

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

    [Fact]
    public void TheEstimate_IsTheContentLengthsCost_OrTheLargestBodysWithoutOne_AndNothingForABodyRefusedUnread()
    {
        var budget = Budget(maxBody: 4096);

        Assert.Equal(1000 * IntakeMemoryBudget.CostPerBodyByte, budget.EstimateFor(1000));
        Assert.Equal(4096 * IntakeMemoryBudget.CostPerBodyByte, budget.EstimateFor(null));
        Assert.Equal(0, budget.EstimateFor(4097));
    }
}
