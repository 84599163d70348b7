using System.Net;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// An <c>Idempotency-Key</c> can never send twice: whatever becomes of a first try (its Front killed between the broker's
/// confirm and the answer, its broker connection dropped mid-publish, its confirm never coming back), a retry with the
/// same key is the same campaign, and every recipient gets one mail.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class IdempotencyKeyTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Recipients = 30;

    [Fact]
    public async Task AFrontKilledBetweenTheConfirmAndTheAnswer_AfterAWorkerStartedIt_IsTheSameCampaignOnRetry_MailedOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        await using var relay = BrokerRelay.Start(broker.Uri);
        using var freeze = new FreezeAfterConfirm();
        using var doomed = await system.StartAnotherFrontOnAsync(relay.Uri, Observed(freeze));
        var (body, key) = (SampleCampaigns.Personal(Recipients), $"order-{Guid.NewGuid():N}");

        var firstTry = PostAsync(doomed, body, key);
        var id = await freeze.Confirmed.WaitAsync(TimeSpan.FromSeconds(30));
        // Dead as far as the broker knows: its key lock went with its connections, and it writes nothing more.
        relay.Cut();
        await smtp.WaitForMailsAsync(1, TimeSpan.FromSeconds(60));

        Assert.Equal(id, await system.PostAsync(body, key));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        Assert.Equal(CampaignReader.KeyedCampaignId("", key), id);
        Assert.Equal((Recipients, Recipients), (done.Total, done.Delivered));
        var record = Ledger(system).FindKey("", key)!;
        Assert.Equal([AcceptanceState.Live], record.Submissions.Select(s => s.State));
        Assert.Equal(record.Submissions[0].Request.AcceptanceId, record.Accepted!.AcceptanceId);
        await AssertOneMailEachAsync(system, smtp);
        Assert.False(firstTry.IsCompleted, "the killed Front answered");
    }

    [Fact]
    public async Task ARetryThatFindsTheFirstTryUndecided_WhileItsJobWaitsUnconsumed_VoidsIt_AndWorkersSendOneCopy()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await using var relay = BrokerRelay.Start(broker.Uri);
        using var freeze = new FreezeAfterConfirm();
        using var doomed = await system.StartAnotherFrontOnAsync(relay.Uri, Observed(freeze));
        var (body, key) = (SampleCampaigns.Personal(Recipients), $"order-{Guid.NewGuid():N}");

        var firstTry = PostAsync(doomed, body, key);
        var id = await freeze.Confirmed.WaitAsync(TimeSpan.FromSeconds(30));
        relay.Cut();

        // No Worker has run: the first try's job waits on the queue, undecided. The retry voids it and publishes afresh.
        Assert.Equal(id, await system.PostAsync(body, key));
        Assert.Equal(2u, await system.WorkQueueDepthAsync());
        var record = Ledger(system).FindKey("", key)!;
        // The retry's accepted entry settles its submission live, as a Worker's started would.
        Assert.Equal([AcceptanceState.Void, AcceptanceState.Live], record.Submissions.Select(s => s.State));
        Assert.Equal(record.Submissions[1].Request.AcceptanceId, record.Accepted!.AcceptanceId);

        await system.StartWorkerAsync(smtp);
        await system.StartWorkerAsync(smtp);
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));

        Assert.Equal((Recipients, Recipients), (done.Total, done.Delivered));
        Assert.Equal([AcceptanceState.Void, AcceptanceState.Live], Ledger(system).FindKey("", key)!.Submissions.Select(s => s.State));
        await AssertOneMailEachAsync(system, smtp);
        Assert.False(firstTry.IsCompleted, "the killed Front answered");
    }

    [Fact]
    public async Task ABrokerConnectionDroppedMidPublish_IsAnHonest503NamingTheCampaign_AndTheRetryWithTheKeySendsItOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        await using var relay = BrokerRelay.Start(broker.Uri);
        using var dropped = await system.StartAnotherFrontOnAsync(relay.Uri, _ => { });
        await WaitUntilReadyAsync(dropped);
        const int count = 1000;
        var (body, key) = (SampleCampaigns.Personal(count), $"order-{Guid.NewGuid():N}");

        // The campaign is one message of about 80 KB: the connection drops when 30 KB of it (and the few entries
        // written before it) have gone through.
        relay.At(relay.BytesToBroker + 30_000, hold: false);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var answer = await PostAsync(dropped, body, key);
        output.WriteLine($"answered {(int)answer.StatusCode} in {clock.ElapsedMilliseconds} ms");

        var id = CampaignReader.KeyedCampaignId("", key);
        await AssertNotKnownAsync(answer, id);
        Assert.Equal(id, await system.PostAsync(body, key));
        output.WriteLine($"retried in {clock.ElapsedMilliseconds} ms");
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));
        output.WriteLine($"sent in {clock.ElapsedMilliseconds} ms");

        Assert.Equal((count, count), (done.Total, done.Delivered));
        Assert.Equal([AcceptanceState.Void, AcceptanceState.Live], Ledger(system).FindKey("", key)!.Submissions.Select(s => s.State));
        await AssertOneMailEachAsync(system, smtp, count);
    }

    [Fact]
    public async Task AConfirmThatNeverComes_IsAnHonest503NamingTheCampaign_AndTheRetryWithTheKeySendsItOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        await using var relay = BrokerRelay.Start(broker.Uri);
        using var logs = new CapturedLogs();
        using var held = await system.StartAnotherFrontOnAsync(relay.Uri, s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs), "--Front:PublishTimeoutSeconds=2", "--Logging:LogLevel:Bulk=Warning");
        await WaitUntilReadyAsync(held);
        const int count = 1000;
        var (body, key) = (SampleCampaigns.Personal(count), $"order-{Guid.NewGuid():N}");

        // 30 KB into the campaign's message, the broker's replies stop coming back: the message lands on the queue (a
        // Worker takes it), the Front hears neither its confirm nor, trying to void it, the stream's.
        relay.At(relay.BytesToBroker + 30_000, hold: true);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var answering = PostAsync(held, body, key);
        // Once the Front has given up settling it, the connection that hears nothing is cut, as the heartbeat would in
        // a minute: the answer must not depend on how the dead connection ends.
        await Poll.UntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.Message.Contains("may or may not be enqueued", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(90));
        relay.Cut();
        using var answer = await answering;
        output.WriteLine($"answered {(int)answer.StatusCode} in {clock.ElapsedMilliseconds} ms");
        Assert.DoesNotContain(logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error && e.Exception is not null);

        var id = CampaignReader.KeyedCampaignId("", key);
        await AssertNotKnownAsync(answer, id);
        Assert.Equal(id, await system.PostAsync(body, key));
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(120));

        Assert.Equal((count, count), (done.Total, done.Delivered));
        var states = Ledger(system).FindKey("", key)!.Submissions.Select(s => s.State).ToList();
        output.WriteLine($"submissions: {string.Join(", ", states)}");
        Assert.Contains(states, s => s == AcceptanceState.Live);
        Assert.Single(states, s => s == AcceptanceState.Live);
        await AssertOneMailEachAsync(system, smtp, count);
    }

    private static async Task AssertNotKnownAsync(HttpResponseMessage answer, string id)
    {
        var text = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)answer.StatusCode}: {text}");
        Assert.Equal("application/problem+json", answer.Content.Headers.ContentType?.MediaType);
        Assert.True(answer.Headers.RetryAfter?.Delta > TimeSpan.Zero, "503 must say when to retry");
        using var problem = JsonDocument.Parse(text);
        Assert.Equal(id, problem.RootElement.GetProperty("campaignId").GetString());
        var detail = problem.RootElement.GetProperty("detail").GetString()!;
        Assert.Contains($"does not know whether campaign {id} was enqueued", detail, StringComparison.Ordinal);
        Assert.Contains("same Idempotency-Key", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("Nothing was enqueued", detail, StringComparison.Ordinal);
    }

    private async Task AssertOneMailEachAsync(BulkSystem system, TestSmtpServer smtp, int count = Recipients)
    {
        // Whatever else there was to send (the void copy) is off the queue, dropped: nothing more can come.
        await Poll.UntilAsync(async () => await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(30));
        await Task.Delay(500);
        var mails = smtp.Mails.Select(m => m.Recipient).ToList();
        output.WriteLine($"{mails.Count} mails to {mails.Distinct().Count()} recipients");
        Assert.Equal(count, mails.Distinct().Count());
        Assert.Equal(count, mails.Count);
    }

    private static CampaignLedger Ledger(BulkSystem system) => system.FrontServices.GetRequiredService<OutcomeLog>().Ledger;

    private static Action<IServiceCollection> Observed(IntakeObserver observer) =>
        services => services.Replace(ServiceDescriptor.Singleton(observer));

    private static Task<HttpResponseMessage> PostAsync(HttpClient front, string body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = JsonBody.Of(body) };
        request.Headers.Add("Idempotency-Key", key);
        return front.SendAsync(request);
    }

    private static Task WaitUntilReadyAsync(HttpClient front) => Poll.UntilAsync(
        async () => (await front.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));

    /// <summary>Stops the Front for good right after the broker's confirm, before it records the acceptance or answers:
    /// with its broker connections cut, it is a Front killed at that instant.</summary>
    private sealed class FreezeAfterConfirm : IntakeObserver, IDisposable
    {
        private readonly TaskCompletionSource<string> confirmed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource thawed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> Confirmed => confirmed.Task;

        public override async Task ConfirmedAsync(string campaignId)
        {
            confirmed.TrySetResult(campaignId);
            await thawed.Task;
            throw new InvalidOperationException("this Front is dead: it never got past the confirm");
        }

        /// <summary>Lets the frozen request end (in a 500, with nothing recorded), so that the host can stop.</summary>
        public void Dispose() => thawed.TrySetResult();
    }
}
