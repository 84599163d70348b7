using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Tests.Infrastructure;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>What a job leaves behind is re-queued only where the broker did not confirm it, and a copy of a job is never
/// worked on with a ledger that lags behind what other processes recorded.</summary>
[Collection(BrokerCollection.Name)]
public sealed class PartialCommitTests(BrokerFixture broker, ITestOutputHelper output)
{
    private static readonly TimeSpan Tier = TimeSpan.FromMinutes(1);

    /// <summary>The job's commit has two parts: the recipient of a domain over its rate goes back to work, the deferred
    /// one to its delay tier, whose queue is full and refuses it for a while (as a queue without a leader does).</summary>
    [Fact]
    public async Task APartlyConfirmedCommit_RequeuesOnlyWhatWasNotConfirmed_WhereItWasGoing()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        smtp.RecipientRule = (address, _) => address.EndsWith("@tempfail.example", StringComparison.Ordinal) ? (451, "4.3.0 try again later") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var tier = system.Topology.RetryQueue(Tier);
        await using var removed = DeletedAtTheEnd(tier);
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using (var declare = await connection.CreateChannelAsync())
        {
            // Declared first with a length limit of one, and filled past it (a quorum queue refuses only once it is over
            // its limit): the Worker uses it as it is, and the broker nacks what the Worker publishes to it.
            var arguments = system.Topology.RetryQueueArguments(Tier);
            arguments["x-max-length"] = 1;
            await declare.QueueDeclareAsync(tier, durable: true, exclusive: false, autoDelete: false, arguments);
            await declare.BasicPublishAsync("", tier, "{}"u8.ToArray());
            await declare.BasicPublishAsync("", tier, "{}"u8.ToArray());
        }

        await Poll.UntilAsync(async () => await broker.MessageCountAsync(tier) == 2, TimeSpan.FromSeconds(10));
        await system.StartWorkerAsync(smtp, "--Delivery:RetryTiers=1m", "--Delivery:ImmediateRetries=0", "--Delivery:Prefetch=1",
            "--Smtp:DomainLimits:slow.example=0.2");

        var id = await system.PostAsync(Campaign("a@example.org", "b@tempfail.example", "c@slow.example", "d@slow.example"));
        await Poll.UntilAsync(() => smtp.AttemptsFor("b@tempfail.example") == 1, TimeSpan.FromSeconds(30));
        // Showing that nothing happens: a whole job sent round through bulk.paused comes back to work within about 2 s.
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.Equal(1, smtp.AttemptsFor("b@tempfail.example"));
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.PausedQueue));

        await using (var purge = await connection.CreateChannelAsync())
        {
            await purge.QueuePurgeAsync(tier);
        }

        await Poll.UntilAsync(async () => await broker.MessageCountAsync(tier) == 1, TimeSpan.FromSeconds(30));
        var deferred = JsonSerializer.Deserialize((await broker.GetAsync(tier))!.Body.Span, BulkJson.Default.DeliveryJob)!;
        Assert.Equal(["b@tempfail.example"], deferred.Recipients.Select(r => r.Email));
        Assert.Equal(1, deferred.Attempt);

        var status = await system.WaitForStatusAsync(id, s => s.Delivered == 3, TimeSpan.FromSeconds(30));
        output.WriteLine($"{status.Delivered} delivered, {status.Deferred} deferred; mails: {string.Join(", ", smtp.Mails.Select(m => m.Recipient))}");
        Assert.Equal(["a@example.org", "c@slow.example", "d@slow.example"], smtp.Mails.Select(m => m.Recipient).Order());
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.PausedQueue));
    }

    /// <summary>Another Worker delivered two recipients of a job and recorded it; a copy of that job (a commit confirmed
    /// but not acked, a partly confirmed one) reaches this Worker while its ledger is still folding a burst of entries.</summary>
    [Fact]
    public async Task ACopyOfAJob_IsWorkedOnOnlyOnceTheLedgerHasReadToNow_SoWhatAnotherWorkerDeliveredIsNotSentAgain()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        // The first time round, two recipients are deferred: this Worker knows the campaign, and has them pending.
        smtp.RecipientRule = (address, offered) => address.EndsWith("@later.example", StringComparison.Ordinal) && offered == 0 ? (451, "4.3.0 try again later") : null;
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await using var removed = DeletedAtTheEnd(system.Topology.RetryQueue(Tier));
        await system.StartWorkerAsync(smtp, "--Delivery:RetryTiers=1m", "--Delivery:ImmediateRetries=0", "--Delivery:Prefetch=1");
        var id = await system.PostAsync(Campaign("a@example.org", "b@later.example", "c@later.example"));
        await system.WaitForStatusAsync(id, s => s.Delivered == 1 && s.Deferred == 2, TimeSpan.FromSeconds(30));
        var retry = await GetRetriedJobAsync(system);
        Assert.Equal(2, retry.Recipients.Count);

        // Another Worker delivered them (its outcome on the stream behind a burst of other campaigns' entries), and a copy
        // of their job comes to this one, all on one channel in this order.
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        // No confirms: waiting for each would let the Worker's tail keep pace; one channel keeps the order.
        await using (var channel = await connection.CreateChannelAsync())
        {
            var burst = JsonSerializer.SerializeToUtf8Bytes(
                new OutcomeEvent(OutcomeType.Progress, "other-campaign", DateTimeOffset.UtcNow, Total: 1, Delivered: [0]), BulkJson.Default.OutcomeEvent);
            for (var i = 0; i < 100_000; i++)
            {
                await channel.BasicPublishAsync("", system.Topology.OutcomesStream, burst);
            }

            await channel.BasicPublishAsync("", system.Topology.OutcomesStream, JsonSerializer.SerializeToUtf8Bytes(
                new OutcomeEvent(OutcomeType.Progress, id, DateTimeOffset.UtcNow, Total: 3, Delivered: [.. retry.Recipients.Select(r => r.Index)]),
                BulkJson.Default.OutcomeEvent));
            await channel.BasicPublishAsync("", system.Topology.WorkQueue, JsonSerializer.SerializeToUtf8Bytes(retry, BulkJson.Default.DeliveryJob));
        }

        // One job at a time: once the next campaign is done, the copy was handled.
        var next = await system.PostAsync(Campaign("z@example.org"));
        await system.WaitForStatusAsync(next, s => s.IsFinished, TimeSpan.FromSeconds(60));
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));
        output.WriteLine($"mails: {string.Join(", ", smtp.Mails.Select(m => m.Recipient))}");
        Assert.Equal((CampaignLedger.Statuses.Completed, 3), (done.Status, done.Delivered));
        Assert.Equal(["a@example.org", "z@example.org"], smtp.Mails.Select(m => m.Recipient).Order());
    }

    /// <summary>The deferred recipients' job, taken off its delay tier before it comes back to work.</summary>
    private async Task<DeliveryJob> GetRetriedJobAsync(BulkSystem system)
    {
        var tier = system.Topology.RetryQueue(Tier);
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(tier) == 1, TimeSpan.FromSeconds(10));
        return JsonSerializer.Deserialize((await broker.GetAsync(tier))!.Body.Span, BulkJson.Default.DeliveryJob)!;
    }

    /// <summary>The one-minute tier is not among the tiers the test system removes from the shared broker.</summary>
    private AsyncDisposable DeletedAtTheEnd(string queue) => new(() => broker.DeleteQueuesAsync(queue));

    private sealed class AsyncDisposable(Func<Task> dispose) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await dispose();
    }

    private static string Campaign(params string[] recipients) => new JsonObject
    {
        ["from"] = "News <news@example.com>",
        ["subject"] = "Hello",
        ["text"] = "Hi.",
        ["recipients"] = new JsonArray([.. recipients.Select(r => (JsonNode)JsonValue.Create(r))]),
    }.ToJsonString();
}
