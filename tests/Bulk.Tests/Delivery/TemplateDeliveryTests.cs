using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Delivery;

/// <summary>A template that cannot render fails its recipients with the reason; it never stalls a Worker or holds a prefetch slot.</summary>
[Collection(BrokerCollection.Name)]
public sealed class TemplateDeliveryTests(BrokerFixture broker)
{
    [Fact]
    public async Task ARecipientWhoseDataCannotRender_FailsWithTheTemplatesReason_AndTheOthersAreDelivered()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        var id = await system.PostAsync("""{"from":"news@example.com","subject":"s","text":"{{ 100 | divided_by: n }} each","recipients":[{"email":"a@example.org","data":{"n":4}},{"email":"b@example.org","data":{"n":0}},{"email":"c@example.org","data":{"n":5}}]}""");
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));

        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 2, 1), (done.Status, done.Delivered, done.Failed));
        var failure = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures")[0];
        Assert.Equal(("b@example.org", "template: division by zero"), (failure.GetProperty("email").GetString(), failure.GetProperty("reply").GetString()));
        Assert.DoesNotContain(smtp.Mails, m => m.Recipient == "b@example.org");
        Assert.Equal("25 each", smtp.Mails.Single(m => m.Recipient == "a@example.org").Message.TextBody!.Trim());
    }

    [Fact]
    public async Task ANumberLiquidCannotHold_ReachesTheTemplateAsItsJsonText_AndASubjectPastALine_FailsOnlyItsRecipient()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        var longTitle = new string('t', 1200);

        var id = await system.PostAsync("""{"from":"news@example.com","subject":"{{ title }}","text":"n={{ n }}","recipients":[{"email":"a@example.org","data":{"n":1,"title":"Hi"}},{"email":"b@example.org","data":{"n":1e308,"title":"Hey"}},{"email":"c@example.org","data":{"n":123456789012345678901234567890,"title":"LONG"}}]}"""
            .Replace("LONG", longTitle, StringComparison.Ordinal));
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(30));

        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 2, 1), (done.Status, done.Delivered, done.Failed));
        Assert.Equal("n=1e308", smtp.Mails.Single(m => m.Recipient == "b@example.org").Message.TextBody!.Trim());
        var failure = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures")[0];
        Assert.Equal(("c@example.org", "template: the subject grew past 998 characters (a header line's limit)"),
            (failure.GetProperty("email").GetString(), failure.GetProperty("reply").GetString()));
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
    }

    /// <summary>The jobs of the issue that stalled a Worker, put on the queue as a foreign or older Front would: past the Front's checks.</summary>
    [Fact]
    public async Task JobsWhoseTemplatesCannotRender_FailTheirRecipients_AndANormalCampaignAfterThemCompletesAtOnce()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);

        string[] templates = ["<p>{% include 'footer' %}</p>", "{{ 1 | divided_by: 0 }}", "{% for i in (1..200000000) %}x{% endfor %}"];
        var bad = new List<string>();
        foreach (var html in templates)
        {
            var id = Guid.NewGuid().ToString("N");
            bad.Add(id);
            var recipients = Enumerable.Range(0, 20).Select(i => new JobRecipient(i, SampleCampaigns.Address(i))).ToList();
            var job = new DeliveryJob(DeliveryJob.CurrentVersion, id, new MessageTemplate("news@example.com", "Hi", null, html), recipients, Total: 20);
            var body = JsonSerializer.SerializeToUtf8Bytes(job, BulkJson.Default.DeliveryJob);
            // The Worker declares the work queue when it connects: until then the broker has nowhere to route a job.
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    await broker.PublishAsync(system.Topology.WorkQueue, body);
                    return true;
                }
                catch (RabbitMQ.Client.Exceptions.PublishReturnException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(10));
        }

        var normal = await system.PostAsync(SampleCampaigns.Personal(200));
        var done = await system.WaitForStatusAsync(normal, s => s.IsFinished, TimeSpan.FromSeconds(30));
        Assert.Equal((CampaignLedger.Statuses.Completed, 200), (done.Status, done.Delivered));

        foreach (var id in bad)
        {
            var status = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(10));
            Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 0, 20), (status.Status, status.Delivered, status.Failed));
            var reply = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}/failures")).RootElement.GetProperty("failures")[0].GetProperty("reply").GetString();
            Assert.StartsWith("template: ", reply);
        }

        Assert.Equal(200, smtp.Mails.Count);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
        Assert.Equal(0u, await broker.MessageCountAsync(system.Topology.DeadQueue));
    }
}
