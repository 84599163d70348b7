using Bulk.Broker;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Delivery;

/// <summary>A domain's back-off after the relay's "too many" lasts as long as it says, whatever the wall clock does
/// meanwhile (NTP or an operator stepping it).</summary>
public sealed class ThrottleBackoffClockTests
{
    private const string Domain = "example.org";

    [Fact]
    public void AWallClockSetForward_DoesNotEndABackoffEarly()
    {
        var clock = new SteppedWallClock();
        using var limits = Limits(clock);

        limits.Throttled(Domain, "421 4.7.0 too many messages");
        clock.Step = TimeSpan.FromHours(1);

        Assert.True(limits.LimitsDomain(Domain), "a one-second back-off ended when the wall clock moved an hour");
    }

    [Fact]
    public async Task AWallClockSetBack_DoesNotStretchABackoff()
    {
        var clock = new SteppedWallClock();
        using var limits = Limits(clock);

        limits.Throttled(Domain, "421 4.7.0 too many messages");
        clock.Step = TimeSpan.FromHours(-1);

        // One second's back-off; an hour and a second by the wall clock.
        using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(await limits.WaitDomainTurnAsync(Domain, giveUp.Token), "the back-off outlasted 20 s");
        Assert.False(limits.LimitsDomain(Domain));
    }

    private static SendRateLimits Limits(TimeProvider clock)
    {
        var smtp = Options.Create(new SmtpOptions { Host = "127.0.0.1" });
        // No global rate: nothing here reaches a broker.
        var connections = new BrokerConnections(Options.Create(new RabbitMqOptions { Uri = "amqp://guest:guest@127.0.0.1:1/" }),
            new BrokerClientName("test"), NullLogger<BrokerConnections>.Instance);
        return new SendRateLimits(smtp, new GlobalRateLimit(connections, smtp, NullLogger<GlobalRateLimit>.Instance),
            NullLogger<SendRateLimits>.Instance, clock);
    }

    /// <summary>The system's monotonic clock, and its wall clock moved by <see cref="Step"/>.</summary>
    private sealed class SteppedWallClock : TimeProvider
    {
        public TimeSpan Step { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Step;
    }
}
