using System.Net;
using System.Text.Json;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// A 202 means the campaign's <c>accepted</c> entry is on the outcomes stream, where every Front reads its total and
/// key. A Front that loses the broker between the campaign's confirm and that entry's answers 503, and keeps nothing in
/// its own memory that the stream does not have.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class AcceptanceNotRecordedTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const int Recipients = 20;

    [Fact]
    public async Task AFrontThatLosesTheBrokerAfterTheConfirm_AnswersA503NamingTheCampaign_NeverA202_AndRemembersNothing()
    {
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        await system.StartWorkerAsync(smtp);
        await using var relay = BrokerRelay.Start(broker.Uri);
        var cutAfterConfirm = new CutAfterConfirm(relay);
        var front = await system.StartAnotherFrontOnAsync(relay.Uri, services => services.Replace(ServiceDescriptor.Singleton<IntakeObserver>(cutAfterConfirm)),
            "--Front:PublishTimeoutSeconds=2");
        await Poll.UntilAsync(async () => (await front.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var answer = await front.PostAsync("/campaigns", JsonBody.Of(SampleCampaigns.Personal(Recipients)));
        var text = await answer.Content.ReadAsStringAsync();
        output.WriteLine($"answered {(int)answer.StatusCode} in {clock.ElapsedMilliseconds} ms: {text}");

        Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)answer.StatusCode}: {text}");
        Assert.True(answer.Headers.RetryAfter?.Delta > TimeSpan.Zero, "503 must say when to retry");
        var id = await cutAfterConfirm.Confirmed;
        using (var problem = JsonDocument.Parse(text))
        {
            Assert.Equal(id, problem.RootElement.GetProperty("campaignId").GetString());
        }

        // Nothing the stream lacks is in this Front's memory: it knows no more of the campaign than the stream does.
        using (var status = await front.GetAsync($"/campaigns/{id}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        }

        // The Worker started the job before anyone could void it: it is sent, once, and shown as the 503 said it would be.
        var done = await system.WaitForStatusAsync(id, s => s.CompletedAt is not null, TimeSpan.FromSeconds(60));
        Assert.Equal(Recipients, done.Delivered);
        Assert.Equal(Recipients, smtp.Mails.Count);
    }

    /// <summary>Cuts the Front's broker connections, for good, the moment the broker has confirmed a campaign.</summary>
    private sealed class CutAfterConfirm(BrokerRelay relay) : IntakeObserver
    {
        private readonly TaskCompletionSource<string> confirmed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> Confirmed => confirmed.Task;

        public override Task ConfirmedAsync(string campaignId)
        {
            relay.Cut();
            confirmed.TrySetResult(campaignId);
            return Task.CompletedTask;
        }
    }
}
