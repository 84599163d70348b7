using Bulk.Front.Access;
using Microsoft.AspNetCore.Http;

namespace Bulk.Tests.Access;

/// <summary>What the Front decides from a request's headers before it looks for a caller; no I/O.</summary>
public sealed class EdgeDecisionTests
{
    private static readonly HostString Front = new("127.0.0.1:5000");

    [Theory]
    [InlineData("POST", "cross-site", "http://evil.example")]
    [InlineData("POST", "cross-site", null)]
    [InlineData("DELETE", "same-site", "http://127.0.0.1:8000")]
    [InlineData("PUT", null, "http://evil.example")]
    [InlineData("PATCH", null, "http://127.0.0.1:8000")]
    [InlineData("POST", null, "null")]
    public void AChangeAPageOfAnotherSiteAsksFor_IsRefused(string method, string? fetchSite, string? origin) =>
        Assert.NotNull(CrossSiteGuard.Refusal(method, fetchSite, origin, Front));

    [Theory]
    [InlineData("POST", "same-origin", "http://127.0.0.1:5000")]
    [InlineData("POST", "none", null)]
    [InlineData("POST", null, "http://127.0.0.1:5000")]
    [InlineData("POST", null, "https://127.0.0.1:5000")]
    [InlineData("POST", null, null)]
    [InlineData("GET", "cross-site", "http://evil.example")]
    [InlineData("HEAD", "cross-site", null)]
    public void TheFrontsOwnPage_AReading_OrAClientThatIsNoBrowser_IsLetThrough(string method, string? fetchSite, string? origin) =>
        Assert.Null(CrossSiteGuard.Refusal(method, fetchSite, origin, Front));

    [Theory]
    [InlineData("localhost:5000", true)]
    [InlineData("LOCALHOST", true)]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("192.0.2.7:5000", true)]
    [InlineData("bulk.internal:5000", true)]
    [InlineData("evil.example:5000", false)]
    [InlineData("localhost.evil.example", false)]
    [InlineData("this-machine", false)]
    public void WithoutKeys_TheHostIsOneOfTheFrontsNames_OrAnAddress(string host, bool allowed) =>
        Assert.Equal(allowed, new AllowedHosts(["http://127.0.0.1:5000"], ["bulk.internal"], withKeys: false, "this-machine").Allows(new HostString(host)));

    [Fact]
    public void ListeningOnANameOrEveryAddress_AddsThatNameOrTheMachines()
    {
        var named = new AllowedHosts(["http://bulk.lan:5000"], [], withKeys: false, "this-machine");
        var everywhere = new AllowedHosts(["http://[::]:8080"], [], withKeys: false, "this-machine");

        Assert.True(named.Allows(new HostString("bulk.lan:5000")));
        Assert.False(named.Allows(new HostString("this-machine")));
        Assert.True(everywhere.Allows(new HostString("this-machine:8080")));
        Assert.False(everywhere.Allows(new HostString("evil.example:8080")));
    }

    [Fact]
    public void WithKeys_AnyHostIsTaken_UnlessAllowedHostsListsSome()
    {
        Assert.True(new AllowedHosts(["http://127.0.0.1:5000"], [], withKeys: true, "m").Allows(new HostString("bulk.example.com")));
        Assert.False(new AllowedHosts(["http://127.0.0.1:5000"], ["bulk.internal"], withKeys: true, "m").Allows(new HostString("bulk.example.com")));
        Assert.True(new AllowedHosts(["http://127.0.0.1:5000"], ["*"], withKeys: false, "m").Allows(new HostString("anything.example")));
    }

    [Theory]
    [InlineData(true, false, true, false, true)]
    [InlineData(true, false, false, true, true)]
    [InlineData(true, true, true, false, true)]
    [InlineData(true, true, false, true, false)]
    [InlineData(true, true, true, true, false)]
    [InlineData(true, false, false, false, false)]
    [InlineData(false, false, true, true, false)]
    public void AKeylessFront_RefusesWhatCameThroughAProxy_UnlessItTrustsOne(
        bool keyless, bool trustProxy, bool forwarded, bool forwardedFor, bool refused) =>
        Assert.Equal(refused, ProxyHeaders.Refusal(keyless, trustProxy, forwarded, forwardedFor) is not null);
}
