using System.Globalization;
using System.Net;
using System.Text.Json;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Bulk.Tests.Reference;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// Campaigns posted at once hold no more memory than <c>Front__MaxIntakeMemoryBytes</c>: a POST that does not fit is a
/// 503 with Retry-After before its body is read, enqueues nothing, and the budget comes back whatever became of a POST.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class IntakeMemoryTests(BrokerFixture broker, ITestOutputHelper output)
{
    /// <summary>Recipients of the test's largest campaign, each with 10 data values: the costliest shape per byte.</summary>
    private const int Recipients = 10_000;

    private const int AtOnce = 20;

    [Fact]
    public async Task TwentyLargestCampaignsAtOnce_KeepTheFrontsPeakWithinItsBudget_AndEachIsAcceptedWholeOrRefusedWith503()
    {
        var body = Body(Recipients, values: 10);
        var estimate = body.Length * IntakeMemoryBudget.CostPerBodyByte;
        // Room for two of the twenty; without the budget all twenty would be read at once, some 20 times the budget.
        var budget = estimate * 2 + estimate / 2;
        await using var system = BulkSystem.On(broker.Uri, broker);
        var front = await system.StartFrontProcessAsync(
            $"--Front:MaxBodyBytes={body.Length}", $"--Front:MaxIntakeMemoryBytes={budget}", "--Front:CampaignsPerMinute=0",
            "--Front:MaxPostsInFlightPerKey=0");
        using var client = ExpectContinueClient(system.FrontAddress);
        // The code paths compiled and the broker's channels open before the baseline.
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(client, Body(3, values: 1))).Status);
        var baseline = ProcessMemory.Resident(front.Id);
        Assert.True(ProcessMemory.ResetPeak(front.Id), "this kernel does not let the test reset the Front's VmHWM");

        var answers = await Task.WhenAll(Enumerable.Range(0, AtOnce).Select(_ => PostAsync(client, body)));
        var peak = ProcessMemory.Peak(front.Id);

        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.Accepted or HttpStatusCode.ServiceUnavailable, $"got {a}"));
        var accepted = answers.Where(a => a.Status == HttpStatusCode.Accepted).ToList();
        var refused = answers.Where(a => a.Status == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(accepted);
        Assert.NotEmpty(refused);
        Assert.All(refused, AssertBusy);

        // The budget holds live campaigns; the collector frees a finished one only at its next collection, so a POST
        // admitted just after another ended may find that one's garbage still resident: one estimate of slack.
        var allowed = budget + estimate;
        output.WriteLine($"budget {ProcessMemory.Mb(budget)} MB, estimate {ProcessMemory.Mb(estimate)} MB: {accepted.Count} accepted, {refused.Count} refused, " +
            $"peak +{ProcessMemory.Mb(peak - baseline)} MB over {ProcessMemory.Mb(baseline)} MB");
        Assert.True(peak - baseline <= allowed,
            $"peak RSS rose {ProcessMemory.Mb(peak - baseline)} MB over the baseline of {ProcessMemory.Mb(baseline)} MB: more than the budget of {ProcessMemory.Mb(budget)} MB " +
            $"and one estimate ({ProcessMemory.Mb(estimate)} MB) of slack; {accepted.Count} of {AtOnce} were read");

        // Accepted means whole on the broker; refused means nothing there.
        Assert.Equal((uint)accepted.Count + 1, await system.WorkQueueDepthAsync());
        foreach (var answer in accepted)
        {
            var status = await StatusWhenKnownAsync(system, answer.CampaignId!);
            Assert.Equal(Recipients, status.Total);
        }

        // The budget is whole again: the largest campaign is read, and so is the next.
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(client, body)).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(client, body)).Status);
    }

    [Fact]
    public async Task PostsAbortedMidBodyAndRefused_GiveTheWholeBudgetBack()
    {
        const int MaxBody = 64 * 1024;
        await using var system = await BulkSystem.StartFrontAsync(broker,
            $"--Front:MaxBodyBytes={MaxBody}", $"--Front:MaxIntakeMemoryBytes={2 * MaxBody * IntakeMemoryBudget.CostPerBodyByte}",
            "--Front:CampaignsPerMinute=0");
        var budget = system.FrontServices.GetRequiredService<IntakeMemoryBudget>();
        using var client = ExpectContinueClient(system.FrontAddress);
        var large = Body(300, values: 10);
        Assert.True(large.Length < MaxBody);

        // Two uploads that promise the largest body allowed and stop after a few bytes: between them they hold the budget
        // until they give up and hang up. (A POST holds its first step of body, 64 KiB, before it sends a byte: here that
        // is the whole body allowed. With larger limits, SlowUploadTests shows that a stalled upload holds only that step.)
        var stalled = Enumerable.Range(0, 2).Select(_ => RawUpload.PostAsync(system.FrontAddress, "/campaigns",
            [new ReadOnlyMemory<byte>(large, 0, 100)], MaxBody, TimeSpan.FromSeconds(8))).ToList();
        await Poll.UntilAsync(() => budget.Reserved == budget.Total, TimeSpan.FromSeconds(10));

        for (var i = 0; i < 10; i++)
        {
            AssertBusy(await PostAsync(client, Body(1, values: 1)));
        }

        var document = await OpenApiDocument.FetchAsync(system.Http);
        using (var busy = await SendAsync(client, Body(1, values: 1)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
            await document.AssertDescribesAsync("POST", "/campaigns", busy);
        }

        var cut = await Task.WhenAll(stalled);
        Assert.All(cut, c => Assert.True(c.Status != 202, $"a stalled upload was accepted: {c}"));
        await Poll.UntilAsync(() => budget.Reserved == 0, TimeSpan.FromSeconds(10));
        Assert.Equal(0u, await system.WorkQueueDepthAsync());

        // Whole again: two of the largest are read side by side.
        var both = await Task.WhenAll(PostAsync(client, large), PostAsync(client, large));
        Assert.All(both, a => Assert.Equal(HttpStatusCode.Accepted, a.Status));
        Assert.Equal(0, budget.Reserved);
    }

    /// <summary>What came back from one POST.</summary>
    private sealed record Answer(HttpStatusCode Status, string? RetryAfter, bool Closes, string Body, string? CampaignId);

    private static void AssertBusy(Answer answer)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
        Assert.Equal(CampaignsApi.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture), answer.RetryAfter);
        Assert.True(answer.Closes, "a 503 that left the body unread must close the connection");
        Assert.Contains("Front__MaxIntakeMemoryBytes", answer.Body, StringComparison.Ordinal);
    }

    /// <summary>A client that sends a body only once the Front asks for it (Expect: 100-continue), as a careful client
    /// does: a POST refused before its body is read is answered without the body crossing the wire.</summary>
    private static HttpClient ExpectContinueClient(Uri front) =>
        new(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromSeconds(30) }) { BaseAddress = front, Timeout = TimeSpan.FromSeconds(60) };

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.ExpectContinue = true;
        return await client.SendAsync(request);
    }

    private static async Task<Answer> PostAsync(HttpClient client, byte[] body)
    {
        using var response = await SendAsync(client, body);
        var text = await response.Content.ReadAsStringAsync();
        var id = response.StatusCode == HttpStatusCode.Accepted ? JsonDocument.Parse(text).RootElement.GetProperty("id").GetString() : null;
        return new Answer(response.StatusCode, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            response.Headers.ConnectionClose == true, text, id);
    }

    private static async Task<Bulk.Contracts.Outcomes.CampaignStatus> StatusWhenKnownAsync(BulkSystem system, string id)
    {
        await Poll.UntilAsync(async () => (await system.Http.GetAsync($"/campaigns/{id}")).IsSuccessStatusCode, TimeSpan.FromSeconds(15));
        return await system.StatusAsync(id);
    }

    private static byte[] Body(int recipients, int values)
    {
        var pieces = OversizedBodies.WithRecipientsAndData(recipients, values);
        var body = new byte[OversizedBodies.LengthOf(pieces)];
        var at = 0;
        foreach (var piece in pieces)
        {
            piece.CopyTo(body.AsMemory(at));
            at += piece.Length;
        }

        return body;
    }
}
