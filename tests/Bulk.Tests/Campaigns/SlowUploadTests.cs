using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// A client that uploads slowly costs the Front its own upload and nothing more (issue #24, item 2): the whole body
/// has a deadline (<c>Front__BodyDeadlineSeconds</c>, then 408), a POST holds intake memory for the bytes it has sent,
/// not for the largest body it might send, and one key has at most <c>Front__MaxPostsInFlightPerKey</c> POSTs under
/// way (then 429). Other keys' campaigns are accepted meanwhile.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class SlowUploadTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const string KeyA = "slow-upload-key-a-0123456789";
    private const string KeyB = "slow-upload-key-b-0123456789";
    private const string KeyC = "slow-upload-key-c-0123456789";

    /// <summary>
    /// The trickle: <c>{</c>, then spaces. 50 every 100 ms, about 500 bytes a second: above Kestrel's minimum
    /// rate (240 bytes/s) even when a busy machine stretches the pauses, so it is the deadline that ends it.
    /// </summary>
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task AnUploadStillTricklingAtTheDeadline_IsAnswered408_AndTheConnectionIsClosed()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, "--Front:BodyDeadlineSeconds=2", "--Front:CampaignsPerMinute=0");
        var budget = system.FrontServices.GetRequiredService<IntakeMemoryBudget>();

        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", Trickle(seconds: 30), contentLength: null,
            TimeSpan.FromSeconds(40), Pace);
        output.WriteLine($"{outcome.Status} after {outcome.ToAnswer}, closed after {outcome.ToClose}, {outcome.BytesSent} bytes sent: {outcome.Body}");

        Assert.Equal(408, outcome.Status);
        using var problem = JsonDocument.Parse(outcome.Body);
        Assert.Equal(408, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Contains("Front__BodyDeadlineSeconds", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("Front__BodyDeadlineSeconds", problem.RootElement.GetProperty("setting").GetString());
        // Answered while the client was still sending, which is the point: 30 s of trickle were never all sent.
        Assert.True(outcome.BytesSent < OneSecond * 30, $"the whole trickle was sent ({outcome.BytesSent} bytes) before the answer");
        Assert.True(outcome.Closed, "after a 408 the Front must close the connection, not drain the rest of a slow body");
        await Poll.UntilAsync(() => budget.Reserved == 0, TimeSpan.FromSeconds(10));
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnUploadHoldsIntakeMemoryForTheBytesItSent_NotForTheLargestBodyItMightSend(bool chunked)
    {
        const long MaxBody = 64L * 1024 * 1024;
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:MaxBodyBytes={MaxBody}",
            "--Front:BodyDeadlineSeconds=60", "--Front:CampaignsPerMinute=0");
        var budget = system.FrontServices.GetRequiredService<IntakeMemoryBudget>();
        var step = IntakeMemoryBudget.CostPerBodyByte * IntakeMemoryBudget.StepBytes;

        // 100 KiB of a body that says it will be (or, chunked, may be) 64 MiB, then a byte now and then.
        var start = new byte[(100 * 1024) + 1];
        Array.Fill(start, (byte)' ');
        start[0] = (byte)'{';
        var upload = RawUpload.PostAsync(system.FrontAddress, "/campaigns",
            [start, .. Enumerable.Repeat(new ReadOnlyMemory<byte>(" "u8.ToArray()), 100)], chunked ? null : MaxBody,
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100));

        // Two steps of the body are held (100 KiB rounded up), where the worst case would be 64 MiB's: 1.3 GB of budget.
        var held = await Poll.UntilAsync(() => budget.Reserved, r => r >= 2 * step, TimeSpan.FromSeconds(10));
        Assert.Equal(2 * step, held);
        Assert.Equal(2 * step, budget.Reserved);

        await upload;
        await Poll.UntilAsync(() => budget.Reserved == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AKeyWithMaxPostsInFlight_IsAnswered429ForAnotherBeforeItsBodyIsRead_WhileAnotherKeyIsAccepted()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, $"--Front:ApiKeys:0={KeyA}", $"--Front:ApiKeys:1={KeyB}",
            "--Front:MaxPostsInFlightPerKey=2", "--Front:BodyDeadlineSeconds=8", "--Front:CampaignsPerMinute=0");
        var budget = system.FrontServices.GetRequiredService<IntakeMemoryBudget>();

        // Two uploads of key A that say they are 10,000 bytes and send them slowly: each holds what it sent so far.
        const int Promised = 10_000;
        var slow = Enumerable.Range(0, 2).Select(_ => RawUpload.PostAsync(system.FrontAddress, "/campaigns",
            Trickle(seconds: 15), Promised, TimeSpan.FromSeconds(30), Pace, requestHeaders: [$"Authorization: Bearer {KeyA}"])).ToList();
        await Poll.UntilAsync(() => budget.Reserved == 2 * Promised * IntakeMemoryBudget.CostPerBodyByte, TimeSpan.FromSeconds(10));

        var third = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", [Encoding.UTF8.GetBytes(Campaign("a", 1))], null,
            TimeSpan.FromSeconds(20), requestHeaders: [$"Authorization: Bearer {KeyA}"]);
        using (var fromB = await PostAsync(system.FrontAddress, KeyB, Campaign("b", 1)))
        {
            Assert.Equal(HttpStatusCode.Accepted, fromB.StatusCode);
        }

        output.WriteLine($"third of key A: {third.Status}: {third.Body}");
        Assert.Equal(429, third.Status);
        Assert.Contains("Front__MaxPostsInFlightPerKey", third.Body, StringComparison.Ordinal);
        Assert.Equal("5", third.Headers?["Retry-After"]);
        Assert.True(third.Closed, "a 429 that left the body unread must close the connection");
        Assert.Equal(1u, await system.WorkQueueDepthAsync());

        // Once the slow ones are over (408 at their deadline), key A posts again.
        var ended = await Task.WhenAll(slow);
        Assert.All(ended, e => Assert.Equal(408, e.Status));
        Assert.All(ended, e => Assert.Contains("Front__BodyDeadlineSeconds", e.Body, StringComparison.Ordinal));
        using var again = await PostAsync(system.FrontAddress, KeyA, Campaign("a", 1));
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    /// <summary>
    /// The case, against a real Front and Worker with the default body limit and intake budget: three sockets of
    /// one key trickle campaigns in while two other keys post theirs. Before, the first trickle held 20 × 64 MiB of the
    /// 512 MiB budget and every other POST was a 503 until it ended.
    /// </summary>
    [Fact]
    public async Task TricklingUploadsFromOneKey_DoNotKeepOtherKeysCampaignsOut()
    {
        const int Rounds = 4;
        const int PerCampaign = 3;
        await using var sink = await SmtpSink.StartAsync();
        await using var system = BulkSystem.On(broker.Uri, broker);
        await system.StartFrontProcessAsync($"--Front:ApiKeys:0={KeyA}", $"--Front:ApiKeys:1={KeyB}", $"--Front:ApiKeys:2={KeyC}",
            "--Front:BodyDeadlineSeconds=10", "--Front:MaxPostsInFlightPerKey=2");
        await system.StartWorkerProcessAsync(sink.Port);

        var trickles = Enumerable.Range(0, 3).Select(_ => RawUpload.PostAsync(system.FrontAddress, "/campaigns", Trickle(seconds: 25),
            contentLength: null, TimeSpan.FromSeconds(40), Pace, requestHeaders: [$"Authorization: Bearer {KeyA}"])).ToList();

        // While they trickle, keys B and C post a campaign each every second.
        var answers = new List<(string Key, HttpStatusCode Status, string Body)>();
        for (var round = 0; round < Rounds; round++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            foreach (var (key, name) in new[] { (KeyB, "b"), (KeyC, "c") })
            {
                using var answer = await PostAsync(system.FrontAddress, key, Campaign($"{name}{round}", PerCampaign));
                answers.Add((name, answer.StatusCode, await answer.Content.ReadAsStringAsync()));
            }
        }

        var trickled = await Task.WhenAll(trickles);
        foreach (var t in trickled)
        {
            output.WriteLine($"trickle: {t.Status} after {t.ToAnswer}, {t.BytesSent} bytes sent, closed after {t.ToClose}");
        }

        Assert.All(answers, a => Assert.True(a.Status == HttpStatusCode.Accepted, $"key {a.Key}: {(int)a.Status} {a.Body}"));
        // Two trickles were read until their deadline; the third, over key A's share, was refused before it was read.
        Assert.Equal([408, 408, 429], trickled.Select(t => t.Status ?? 0).Order());
        Assert.All(trickled, t => Assert.True(t.Closed, $"{t.Status}: connection left open"));
        Assert.All(trickled.Where(t => t.Status == 408), t => Assert.Contains("Front__BodyDeadlineSeconds", t.Body, StringComparison.Ordinal));
        var delivered = await sink.WaitForDistinctAsync(2 * Rounds * PerCampaign, TimeSpan.FromSeconds(60));
        Assert.Equal(2 * Rounds * PerCampaign, delivered.Count);
    }

    /// <summary>Bytes of trickle a second.</summary>
    private const int OneSecond = 500;

    /// <summary><c>{</c>, then 50 spaces a piece, 10 pieces a second at <see cref="Pace"/>.</summary>
    private static IEnumerable<ReadOnlyMemory<byte>> Trickle(int seconds) =>
        [Encoding.ASCII.GetBytes("{"), .. Enumerable.Repeat(new ReadOnlyMemory<byte>(Encoding.ASCII.GetBytes(new string(' ', OneSecond / 10))), seconds * 10)];

    /// <summary>A small campaign whose recipients are its own (<c>{name}-{i}@example.org</c>), so deliveries can be counted.</summary>
    private static string Campaign(string name, int recipients) => new JsonObject
    {
        ["from"] = "News <news@example.com>",
        ["subject"] = "Hello",
        ["text"] = "Hi.",
        ["recipients"] = new JsonArray([.. Enumerable.Range(0, recipients).Select(i => JsonValue.Create(string.Create(CultureInfo.InvariantCulture, $"{name}-{i}@example.org")))]),
    }.ToJsonString();

    private static async Task<HttpResponseMessage> PostAsync(Uri front, string key, string body)
    {
        using var client = new HttpClient { BaseAddress = front, Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = JsonBody.Of(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await client.SendAsync(request);
    }
}
