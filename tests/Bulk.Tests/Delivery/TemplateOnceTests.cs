using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Broker;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Tests.Infrastructure;
using Bulk.Worker.Rendering;
using Microsoft.Extensions.DependencyInjection;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>A split campaign's template is on the broker once, however many jobs it makes, and each Worker reads and
/// parses it once.</summary>
[Collection(BrokerCollection.Name)]
public sealed class TemplateOnceTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Recipients = 60;
    private const int PerJob = 10;

    [Fact]
    public async Task ASplitCampaign_KeepsItsTemplateOnce_AndItsJobsCarryRecipientsOnly()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var html = LargeHtml(256 * 1024);
        var id = await system.PostAsync(Campaign(html));
        // Paused before any Worker runs: the split still happens, and its jobs wait where they can be looked at.
        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{id}/pause", null)).StatusCode);
        var worker = await system.StartWorkerAsync(smtp, $"--Delivery:RecipientsPerJob={PerJob}");
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.PausedQueue) == Recipients / PerJob
                                          && await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(30));

        var jobs = await PeekAsync(system.Topology.PausedQueue, Recipients / PerJob);
        output.WriteLine($"job bodies: {string.Join(", ", jobs.Select(j => j.Length))} bytes; the html is {html.Length} bytes");
        var read = jobs.Select(body => JobMessages.TryRead(body, out _)!).ToList();
        Assert.All(read, job => Assert.Null(job.Template));
        Assert.Single(read.Select(job => job.TemplateAt).Distinct());
        Assert.All(jobs, body => Assert.InRange(body.Length, 1, 4096));
        Assert.Equal(Recipients, read.SelectMany(job => job.Recipients).Select(r => r.Index).Distinct().Count());

        var templates = await broker.ReadStreamAsync(system.Topology.TemplatesStream, "end"u8.ToArray(), TimeSpan.FromSeconds(15));
        var stored = Assert.Single(templates);
        Assert.Equal(html, JsonSerializer.Deserialize(stored, BulkJson.Default.MessageTemplate)!.Html);

        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{id}/resume", null)).StatusCode);
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));
        Assert.Equal((CampaignLedger.Statuses.Completed, Recipients), (done.Status, done.Delivered));
        foreach (var mail in smtp.Mails)
        {
            // Whole, and personalised: the template read from the stream is the one posted.
            var n = int.Parse(mail.Recipient[4..9], System.Globalization.CultureInfo.InvariantCulture);
            var expected = html.Replace("{{ name }}", $"Name{n}", StringComparison.Ordinal).TrimEnd();
            Assert.True(expected == mail.Message.HtmlBody?.ReplaceLineEndings("\n").TrimEnd(), $"the html {mail.Recipient} received is not the template rendered for them");
        }
        // Six jobs, one read of the template from the broker and one parse.
        Assert.Equal(1, worker.Services.GetRequiredService<CampaignTemplates>().Reads);
    }

    [Fact]
    public async Task AJobWhoseTemplateIsGone_FailsItsRecipientsWithTheReason_AndSendsNothing()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(Campaign(LargeHtml(4096)));
        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{id}/pause", null)).StatusCode);
        await system.StartWorkerAsync(smtp, $"--Delivery:RecipientsPerJob={PerJob}");
        await Poll.UntilAsync(async () => await broker.MessageCountAsync(system.Topology.PausedQueue) == Recipients / PerJob
                                          && await system.WorkQueueDepthAsync() == 0, TimeSpan.FromSeconds(30));

        // As if the templates stream had been declared anew since: another entry stands at the jobs' offset.
        for (var i = 0; i < Recipients / PerJob; i++)
        {
            var taken = (await broker.GetAsync(system.Topology.PausedQueue))!;
            var job = JobMessages.TryRead(taken.Body.Span, out _)!;
            await broker.PublishAsync(system.Topology.PausedQueue, JobMessages.Serialize(job with { TemplateAt = job.TemplateAt! with { Id = "another" } }));
        }

        Assert.Equal(HttpStatusCode.OK, (await system.Http.PostAsync($"/campaigns/{id}/resume", null)).StatusCode);
        var done = await system.WaitForStatusAsync(id, s => s.IsFinished, TimeSpan.FromSeconds(60));

        output.WriteLine($"{done.Status}: {done.Delivered} delivered, {done.Failed} failed");
        Assert.Equal((CampaignLedger.Statuses.CompletedWithFailures, 0, Recipients), (done.Status, done.Delivered, done.Failed));
        var (failures, _) = system.FrontServices.GetRequiredService<OutcomeLog>().Ledger.Failures(id, 0, Recipients)!.Value;
        Assert.All(failures, f => Assert.Contains("template is no longer on", f.Reply, StringComparison.Ordinal));
        Assert.Empty(smtp.Mails);
    }

    /// <summary>Storing a template ends its read of the stream at the entry it wrote, and reading one ends at the entry
    /// it asked for, with more arriving: neither may close the Worker's consuming connection, which its jobs share.</summary>
    [Fact]
    public async Task StoringAndReadingTemplates_LeavesTheWorkersConsumingConnectionOpen()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerAsync(smtp);
        var templates = worker.Services.GetRequiredService<CampaignTemplates>();
        var connections = worker.Services.GetRequiredService<BrokerConnections>();
        var consuming = await connections.GetAsync(ConnectionRole.Consume, CancellationToken.None);

        var stored = new List<TemplateRef>();
        for (var i = 0; i < 80; i++)
        {
            var template = new MessageTemplate("news@example.com", $"Issue {i}", $"Text {i}", null);
            stored.Add(await templates.StoreAsync($"campaign-{i}", template, CancellationToken.None));
            Assert.True(consuming.IsOpen, $"store {i} closed the consuming connection: {consuming.CloseReason}");
        }

        // Read in turn from a fresh Worker, whose cache is empty: each read stops with the entries after it arriving.
        var reader = (await system.StartWorkerAsync(smtp)).Services;
        var readerConnection = await reader.GetRequiredService<BrokerConnections>().GetAsync(ConnectionRole.Consume, CancellationToken.None);
        foreach (var (at, i) in stored.Select((at, i) => (at, i)))
        {
            var job = new DeliveryJob(DeliveryJob.CurrentVersion, $"campaign-{i}", null, [], TemplateAt: at);
            var compiled = await reader.GetRequiredService<CampaignTemplates>().CompiledAsync(job, CancellationToken.None);
            Assert.Equal($"campaign-{i}", compiled.CampaignId);
            Assert.True(readerConnection.IsOpen, $"read {i} closed the consuming connection: {readerConnection.CloseReason}");
        }

        Assert.Same(consuming, await connections.GetAsync(ConnectionRole.Consume, CancellationToken.None));
    }

    private static string LargeHtml(int bytes)
    {
        var html = new System.Text.StringBuilder("<p>Hello {{ name }}</p>\n");
        for (var i = 0; html.Length < bytes; i++)
        {
            html.Append(System.Globalization.CultureInfo.InvariantCulture, $"<p>Paragraph {i} of a long newsletter, the same for everyone.</p>\n");
        }

        return html.ToString();
    }

    private static string Campaign(string html)
    {
        var campaign = JsonNode.Parse(SampleCampaigns.Personal(Recipients))!;
        campaign["html"] = html;
        return campaign.ToJsonString();
    }

    /// <summary>The bodies of the first <paramref name="count"/> messages of a queue, left on it.</summary>
    private async Task<List<byte[]>> PeekAsync(string queue, int count)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(broker.Uri) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var bodies = new List<byte[]>();
        for (var i = 0; i < count && await channel.BasicGetAsync(queue, autoAck: false) is { } got; i++)
        {
            bodies.Add(got.Body.ToArray());
        }

        // Closing the channel without acks puts them all back.
        return bodies;
    }
}
