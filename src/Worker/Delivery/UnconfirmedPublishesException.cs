namespace Bulk.Worker.Delivery;

/// <summary>A commit the broker confirmed only in part, its channel still open: <see cref="Unconfirmed"/> are the
/// publishes it nacked or did not confirm in time, and the job is not acknowledged yet.</summary>
/// <remarks>Broker trouble, not the job's: what was confirmed stays where it is, and only the rest is published again.</remarks>
public sealed class UnconfirmedPublishesException(IReadOnlyList<(string Queue, byte[] Body, string? DeadReason)> unconfirmed, int published, Exception inner)
    : IOException($"the broker confirmed {published - unconfirmed.Count} of {published} publishes ({inner.GetType().Name}: {inner.Message})", inner)
{
    public IReadOnlyList<(string Queue, byte[] Body, string? DeadReason)> Unconfirmed { get; } = unconfirmed;
}
