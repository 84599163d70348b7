namespace Bulk.Worker.Delivery;

/// <summary>The steps a job's recipients go through on a Worker.</summary>
public enum DeliveryStep
{
    /// <summary>Filling the templates with one recipient's data and building the message.</summary>
    Render,

    /// <summary>Waiting for a turn within the rate limits.</summary>
    RateLimit,

    /// <summary>Taking a connection from the SMTP pool (opening one when none is idle).</summary>
    Connect,

    /// <summary>Handing the message to the relay.</summary>
    Send,

    /// <summary>Recording recipients' outcomes on the outcomes stream.</summary>
    Record,

    /// <summary>Publishing what the job leaves behind, waiting for the confirms, and acknowledging the job.</summary>
    Commit,
}

/// <summary>Told of every step of every job as it starts; the default does nothing.</summary>
/// <remarks>
/// The one place to watch a job's life from outside: tests throw from it to prove that a failure at any step ends the
/// job acked or parked with every slot given back.
/// </remarks>
public class DeliveryObserver
{
    public virtual void Step(DeliveryStep step)
    {
    }
}
