namespace Bulk.Front.Campaigns;

/// <summary>Told of every campaign the broker has confirmed, before the Front records its acceptance and answers; the default does nothing.</summary>
/// <remarks>
/// The one place to stop a Front between the broker's confirm and its answer: tests freeze it there, cut its broker
/// connections, and so play a Front killed at that instant.
/// </remarks>
public class IntakeObserver
{
    public virtual Task ConfirmedAsync(string campaignId) => Task.CompletedTask;
}
