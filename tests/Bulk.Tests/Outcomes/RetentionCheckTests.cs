using Bulk.Broker.Outcomes;

namespace Bulk.Tests.Outcomes;

/// <summary>The warning at start when the outcomes stream's size cap would cut its age setting short.</summary>
public sealed class RetentionCheckTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void TenMillionMailsADay_OnTheTwoGigabyteDefault_KeepLessThanADayOfSevenDays_AndSaySo()
    {
        // 2.5 GB a day (one ~250-byte entry per mail, 10 M mails), read over the two days the stream holds.
        var warning = RetentionCheck.Warning(Now - TimeSpan.FromDays(2), Now, 5_000_000_000, 2_000_000_000, "7D");

        Assert.NotNull(warning);
        Assert.Contains("2500 MB a day", warning, StringComparison.Ordinal);
        Assert.Contains("keeps about 0.8 days", warning, StringComparison.Ordinal);
        Assert.Contains("RabbitMq__OutcomesMaxBytes", warning, StringComparison.Ordinal);
        Assert.Contains("RabbitMq__OutcomesMaxAge (7D)", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void AStreamThatKeepsItsAgeWithinTheCap_OrTooShortAHistoryToProject_GivesNoWarning()
    {
        // 10 MB a day: the 2 GB cap holds 200 days, more than 7.
        Assert.Null(RetentionCheck.Warning(Now - TimeSpan.FromDays(3), Now, 30_000_000, 2_000_000_000, "7D"));
        // A quiet stream (1 kB over ten days) projects to more days than a TimeSpan holds: no warning, no overflow.
        Assert.Null(RetentionCheck.Warning(Now - TimeSpan.FromDays(10), Now, 1_000, 2_000_000_000, "7D"));
        // Ten minutes of history at any rate says nothing about a week.
        Assert.Null(RetentionCheck.Warning(Now - TimeSpan.FromMinutes(10), Now, 1_000_000_000, 2_000_000_000, "7D"));
        // The same rate as above against one day asked: the cap keeps 0.8 days, less than 1D.
        Assert.NotNull(RetentionCheck.Warning(Now - TimeSpan.FromDays(2), Now, 5_000_000_000, 2_000_000_000, "1D"));
        Assert.Null(RetentionCheck.Warning(Now - TimeSpan.FromDays(2), Now, 5_000_000_000, 2_000_000_000, "12h"));
    }

    [Theory]
    [InlineData("7D", 7 * 24 * 3600)]
    [InlineData("1Y", 365 * 24 * 3600)]
    [InlineData("2M", 60 * 24 * 3600)]
    [InlineData("12h", 12 * 3600)]
    [InlineData("30m", 30 * 60)]
    [InlineData("45s", 45)]
    public void RabbitMqsAgeUnits_AreRead(string maxAge, long seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetentionCheck.ParseAge(maxAge));

    [Theory]
    [InlineData("")]
    [InlineData("D")]
    [InlineData("7d")]
    [InlineData("-7D")]
    [InlineData("7W")]
    public void AnAgeRabbitMqWouldNotTake_IsNotProjected(string maxAge)
    {
        Assert.Null(RetentionCheck.ParseAge(maxAge));
        Assert.Null(RetentionCheck.Warning(Now - TimeSpan.FromDays(2), Now, 5_000_000_000, 2_000_000_000, maxAge));
    }
}
