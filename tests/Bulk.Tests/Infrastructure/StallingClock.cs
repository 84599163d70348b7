namespace Bulk.Tests.Infrastructure;

/// <summary>A clock for a rendering's time budget whose first <paramref name="stalledReadings"/> readings are each two
/// seconds after the one before, as if the process had stalled (a cold JIT, a busy machine); later readings barely move.</summary>
internal sealed class StallingClock(int stalledReadings) : TimeProvider
{
    private long now;
    private int readings;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        now += readings++ < stalledReadings ? 2 * TimeSpan.TicksPerSecond : 1;
        return now;
    }
}
