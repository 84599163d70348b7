using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>A campaign is known by its subject and sender: the status, the list and the events name them.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CampaignIdentityTests(BrokerFixture broker)
{
    private static string Campaign(string subject, string from = "News <news@example.com>") => new JsonObject
    {
        ["from"] = from,
        ["subject"] = subject,
        ["text"] = "Hi {{ email }}.",
        ["recipients"] = new JsonArray("a@example.org", "b@example.org"),
    }.ToJsonString();

    [Fact]
    public async Task GettingACampaign_AndTheRecentList_NameItsSubjectAndSender()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(Campaign("Winter sale {{ email }}", "Shop Team <shop@example.com>"));

        var status = JsonDocument.Parse(await system.Http.GetStringAsync($"/campaigns/{id}")).RootElement;
        Assert.Equal("Winter sale {{ email }}", status.GetProperty("subject").GetString());
        Assert.Equal("Shop Team <shop@example.com>", status.GetProperty("from").GetString());

        var listed = JsonDocument.Parse(await system.Http.GetStringAsync("/campaigns?limit=50")).RootElement.GetProperty("campaigns")
            .EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);
        Assert.Equal(("Winter sale {{ email }}", "Shop Team <shop@example.com>"),
            (listed.GetProperty("subject").GetString(), listed.GetProperty("from").GetString()));
    }

    [Fact]
    public async Task ALongSubject_IsRecordedCutTo200Characters_EndingInAnEllipsis()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var subject = string.Concat(Enumerable.Repeat("Quarterly report ", 50)); // 850 characters, under the 998 a subject may have
        var id = await system.PostAsync(Campaign(subject));

        var recorded = (await system.StatusAsync(id)).Subject!;
        Assert.Equal(OutcomeEvent.MaxSubjectChars, recorded.Length);
        Assert.Equal(subject[..(OutcomeEvent.MaxSubjectChars - 1)] + "…", recorded);
    }

    [Fact]
    public void ClippingASubject_NeverCutsACharacterOutsideTheBasicPlaneInHalf()
    {
        // The cut falls between the two halves of the last emoji: it goes whole.
        var subject = new string('x', OutcomeEvent.MaxSubjectChars - 2) + "🎉🎉";
        var clipped = CampaignIntake.Clip(subject);

        Assert.Equal(new string('x', OutcomeEvent.MaxSubjectChars - 2) + "…", clipped);
        Assert.True(clipped.Length <= OutcomeEvent.MaxSubjectChars);
        Assert.Equal("Short 🎉", CampaignIntake.Clip("Short 🎉"));
    }

    [Theory]
    [InlineData("\"Shop Team\" <shop@example.com>", "Shop Team <shop@example.com>")]
    [InlineData("shop@example.com", "shop@example.com")]
    [InlineData("\"Müller, Anna\" <anna@example.com>", "Müller, Anna <anna@example.com>")]
    public void TheSenderIsRecorded_AsAPersonWritesIt_NotWithTheHeadersQuotes(string header, string recorded) =>
        Assert.Equal(recorded, CampaignIntake.Sender(header));
}
