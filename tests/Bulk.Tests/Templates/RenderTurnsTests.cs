using Bulk.Templates;

namespace Bulk.Tests.Templates;

/// <summary>Turns at rendering go round the owners waiting, one each, rather than to the renderings in the order they came.</summary>
public sealed class RenderTurnsTests
{
    [Fact]
    public async Task AFreedTurn_GoesToTheNextOwnerWaiting_NotToTheOwnerWithTheMostRenderingsQueued()
    {
        var turns = new RenderTurns(slots: 1);
        var held = await turns.TakeAsync("slow", CancellationToken.None);
        var order = new List<string>();
        var waiting = new[] { ("slow", 2), ("slow", 3), ("slow", 4), ("quick", 1) }
            .Select(w => TakeAndRecordAsync(turns, w.Item1, w.Item2, order))
            .ToList();

        held.Dispose();
        await Task.WhenAll(waiting);

        Assert.Equal(["slow 2", "quick 1", "slow 3", "slow 4"], order);
    }

    [Fact]
    public async Task AWaiterThatGivesUp_IsPassedOver_AndItsTurnGoesToTheNext()
    {
        var turns = new RenderTurns(slots: 1);
        var held = await turns.TakeAsync("a", CancellationToken.None);
        using var giveUp = new CancellationTokenSource();
        var abandoned = turns.TakeAsync("b", giveUp.Token).AsTask();
        var next = turns.TakeAsync("c", CancellationToken.None).AsTask();

        await giveUp.CancelAsync();
        held.Dispose();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        (await next).Dispose();
        // The turn is free again, and taken by the next owner at once.
        using var one = await turns.TakeAsync("d", CancellationToken.None);
        Assert.False(turns.TakeAsync("e", CancellationToken.None).IsCompleted);
    }

    private static async Task TakeAndRecordAsync(RenderTurns turns, string owner, int n, List<string> order)
    {
        using var turn = await turns.TakeAsync(owner, CancellationToken.None);
        lock (order)
        {
            order.Add($"{owner} {n}");
        }
    }
}
