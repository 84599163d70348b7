using System.Net;
using System.Net.Http.Headers;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Bulk.Broker.Hosting;
using Bulk.Front;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Campaigns;

/// <summary>Who may post what: API keys, the loopback-only default, allowed senders and the per-key rate limit.</summary>
[Collection(BrokerCollection.Name)]
public sealed class AccessTests(BrokerFixture broker)
{
    private const string KeyA = "key-a-0123456789abcdef";
    private const string KeyB = "key-b-0123456789abcdef";

    [Fact]
    public async Task WithoutKeys_OnlyLoopbackClientsAreServed_ButHealthAndThePageAnswerAnyone()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--urls=http://0.0.0.0:0");
        var port = system.FrontAddress.Port;
        using var loopback = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        using var outside = new HttpClient { BaseAddress = new Uri($"http://{NonLoopbackAddress()}:{port}") };

        var fromLoopback = await loopback.PostAsync("/campaigns", Campaign("a@example.com"));
        var fromOutside = await outside.PostAsync("/campaigns", Campaign("a@example.com"));

        Assert.Equal(HttpStatusCode.Accepted, fromLoopback.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, fromOutside.StatusCode);
        Assert.Equal("application/problem+json", fromOutside.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Front__ApiKeys", await fromOutside.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, (await outside.GetAsync("/campaigns")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await outside.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await outside.GetAsync("/")).StatusCode);
        Assert.Equal(1u, await system.WorkQueueDepthAsync());
    }

    [Theory]
    [InlineData(false, "No API key is configured (Front__ApiKeys, Front__ApiKeysFile): serving loopback clients only")]
    [InlineData(true, "1 API keys configured")]
    public async Task AFrontSaysAtStartWhoItServes(bool withKey, string line)
    {
        var prefix = $"test-{Guid.NewGuid():N}"[..17];
        await using var front = ChildProcess.Start("dotnet", [Repository.FrontAssembly, "--urls=http://127.0.0.1:0",
            $"--RabbitMq:Uri={broker.Uri}", $"--RabbitMq:Prefix={prefix}", $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}",
            .. withKey ? [$"--Front:ApiKeys:0={KeyA}"] : Array.Empty<string>()]);

        await front.WaitForOutputAsync(line, TimeSpan.FromSeconds(60));
        await front.TerminateAsync(TimeSpan.FromSeconds(20));
        await broker.DeleteQueuesAsync([$"{prefix}.outcomes", $"{prefix}.suppressions"]);
    }

    [Fact]
    public async Task KeysAndAllowedSendersGivenAsOneCommaSeparatedValue_AreAllInEffect_AndTheFrontSaysSoAtStart()
    {
        // As an operator would write it in a shell or a compose file, rather than Front__ApiKeys__0, Front__ApiKeys__1.
        const string keyOne = "key-one-0123456789abcdef", keyTwo = "key-two-0123456789abcdef";
        var prefix = $"test-{Guid.NewGuid():N}"[..17];
        await using var front = ChildProcess.Start("dotnet", [Repository.FrontAssembly, "--urls=http://127.0.0.1:0",
            $"--RabbitMq:Uri={broker.Uri}", $"--RabbitMq:Prefix={prefix}", $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}"],
            new Dictionary<string, string> { ["Front__ApiKeys"] = $"{keyOne},{keyTwo}", ["Front__AllowedSenders"] = "news@example.com" });
        try
        {
            await front.WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            var address = System.Text.RegularExpressions.Regex.Match(front.Output, @"Now listening on: (http://127\.0\.0\.1:\d+)").Groups[1].Value;
            using var http = new HttpClient { BaseAddress = new Uri(address) };

            Assert.Contains("2 API keys configured (0 admin)", front.Output, StringComparison.Ordinal);
            Assert.Contains("Campaigns may be sent only from news@example.com (Front__AllowedSenders)", front.Output, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/campaigns", Campaign("news@example.com"))).StatusCode);
            var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = Campaign("ceo@bank.com") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", keyTwo);
            var notAllowed = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, notAllowed.StatusCode);
            Assert.Contains("not an allowed sender", await notAllowed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            await front.TerminateAsync(TimeSpan.FromSeconds(20));
            var topology = new Bulk.Contracts.Topology(prefix);
            await broker.DeleteQueuesAsync([topology.WorkQueue, topology.DeadQueue, topology.PausedQueue, topology.OutcomesStream, topology.SuppressionsStream,
                Bulk.Contracts.Topology.SnapshotStream(topology.OutcomesStream), Bulk.Contracts.Topology.SnapshotStream(topology.SuppressionsStream)]);
        }
    }

    [Fact]
    public async Task WithKeys_ABearerKeyFromTheSettingsOrTheFileIsNeeded_AndAnythingElseIsA401()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, $"# keys for the tests\n\n{KeyB}\n");
        try
        {
            await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={KeyA}", $"--Front:ApiKeysFile={file}");

            var none = await system.Http.PostAsync("/campaigns", Campaign("a@example.com"));
            var wrong = await Send(system, HttpMethod.Post, "/campaigns", "key-a-0123456789abcdeX", Campaign("a@example.com"));
            var basic = new HttpRequestMessage(HttpMethod.Get, "/campaigns");
            basic.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"x:{KeyA}")));
            var notBearer = await system.Http.SendAsync(basic);
            var withA = await Send(system, HttpMethod.Post, "/campaigns", KeyA, Campaign("a@example.com"));
            var withB = await Send(system, HttpMethod.Post, "/campaigns", KeyB, Campaign("a@example.com"));
            var listWithB = await Send(system, HttpMethod.Get, "/campaigns", KeyB);

            foreach (var refused in new[] { none, wrong, notBearer })
            {
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
                Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            }

            Assert.Equal(HttpStatusCode.Accepted, withA.StatusCode);
            Assert.Equal(HttpStatusCode.Accepted, withB.StatusCode);
            Assert.Equal(HttpStatusCode.OK, listWithB.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
            Assert.Equal(2u, await system.WorkQueueDepthAsync());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task ASenderOutsideTheAllowedOnesIsA403OnFrom_AndNothingIsEnqueued()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker,
            "--Front:AllowedSenders:0=news@example.com", "--Front:AllowedSenders:1=@example.org");

        var exact = await system.Http.PostAsync("/campaigns", Campaign("News <NEWS@example.com>"));
        var domain = await system.Http.PostAsync("/campaigns", Campaign("anyone@example.org"));
        var otherAddress = await system.Http.PostAsync("/campaigns", Campaign("ceo@example.com"));
        var subdomain = await system.Http.PostAsync("/campaigns", Campaign("x@mail.example.org"));
        var lookalike = await system.Http.PostAsync("/campaigns", Campaign("x@example.org.evil.test"));

        Assert.Equal(HttpStatusCode.Accepted, exact.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, domain.StatusCode);
        foreach (var refused in new[] { otherAddress, subdomain, lookalike })
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Contains("not an allowed sender", problem.RootElement.GetProperty("errors").GetProperty("from")[0].GetString());
        }

        Assert.Equal(2u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task ABounceAddressOutsideTheAllowedSendersIsA403OnBounce_AndNothingIsEnqueued()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker,
            "--Front:AllowedSenders:0=news@example.com", "--Front:AllowedSenders:1=@example.org");

        var allowedDomain = await system.Http.PostAsync("/campaigns", Campaign("news@example.com", bounce: "bounces@example.org"));
        var allowedWithVerp = await system.Http.PostAsync("/campaigns", Campaign("news@example.com", bounce: "bounces@example.org", verp: true));
        var otherBounce = await system.Http.PostAsync("/campaigns", Campaign("news@example.com", bounce: "bounces@evil.test"));
        var otherAddress = await system.Http.PostAsync("/campaigns", Campaign("news@example.com", bounce: "ceo@example.com", verp: true));
        var both = await system.Http.PostAsync("/campaigns", Campaign("x@evil.test", bounce: "y@evil.test"));

        Assert.Equal(HttpStatusCode.Accepted, allowedDomain.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, allowedWithVerp.StatusCode);
        foreach (var (refused, bounce) in new[] { (otherBounce, "bounces@evil.test"), (otherAddress, "ceo@example.com") })
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            var errors = problem.RootElement.GetProperty("errors");
            Assert.Equal($"'{bounce}' is not an allowed sender.", errors.GetProperty("bounce")[0].GetString());
            Assert.False(errors.TryGetProperty("from", out _), "the from address was allowed");
        }

        Assert.Equal(HttpStatusCode.Forbidden, both.StatusCode);
        using (var problem = JsonDocument.Parse(await both.Content.ReadAsStringAsync()))
        {
            Assert.Equal(["bounce", "from"], problem.RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name).Order());
        }

        Assert.Equal(2u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task EachKeyHasItsOwnCampaignRate_PastItA429WithRetryAfter()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker,
            $"--Front:ApiKeys:0={KeyA}", $"--Front:ApiKeys:1={KeyB}", "--Front:CampaignsPerMinute=3");

        var firstThree = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            firstThree.Add(await Send(system, HttpMethod.Post, "/campaigns", KeyA, Campaign("a@example.com")));
        }

        var fourth = await Send(system, HttpMethod.Post, "/campaigns", KeyA, Campaign("a@example.com"));
        var otherKey = await Send(system, HttpMethod.Post, "/campaigns", KeyB, Campaign("a@example.com"));
        var readingIsNotLimited = await Send(system, HttpMethod.Get, "/campaigns", KeyA);

        Assert.All(firstThree, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        Assert.Equal(HttpStatusCode.TooManyRequests, fourth.StatusCode);
        Assert.Equal("application/problem+json", fourth.Content.Headers.ContentType?.MediaType);
        var retryAfter = fourth.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 20);
        Assert.Equal(HttpStatusCode.Accepted, otherKey.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readingIsNotLimited.StatusCode);
        Assert.Equal(4u, await system.WorkQueueDepthAsync());
    }

    [Theory]
    [InlineData("--Front:ApiKeys:0=short", "Front__ApiKeys__0")]
    [InlineData("--Front:ApiKeys:0=has a space in it, long enough", "Front__ApiKeys__0")]
    [InlineData("--Front:ApiKeysFile=/nonexistent/keys.txt", "Front__ApiKeysFile")]
    [InlineData("--Front:AllowedSenders:0=example.com", "Front__AllowedSenders__0")]
    [InlineData("--Front:CampaignsPerMinute=-1", "Front__CampaignsPerMinute")]
    public async Task ABadAccessSetting_StopsTheFrontWithALineNamingIt(string setting, string named)
    {
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", setting]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        var line = ConfigurationErrors.OneLine("Bulk.Front", e.Failures);
        Assert.DoesNotContain('\n', line);
        Assert.Contains(named, line);
    }

    private static StringContent Campaign(string from) => new(
        JsonSerializer.Serialize(new { from, subject = "s", text = "t", recipients = new[] { "a@example.net" } }), Encoding.UTF8, "application/json");

    private static StringContent Campaign(string from, string bounce, bool verp = false) => new(
        JsonSerializer.Serialize(new { from, bounce, verp, subject = "s", text = "t", recipients = new[] { "a@example.net" } }), Encoding.UTF8, "application/json");

    private static async Task<HttpResponseMessage> Send(BulkSystem system, HttpMethod method, string path, string key, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await system.Http.SendAsync(request);
    }

    /// <summary>This machine's own address on a real interface: a client there is not loopback.</summary>
    private static IPAddress NonLoopbackAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? throw new InvalidOperationException("this test needs a non-loopback IPv4 address on the machine to act as an outside client");
}
