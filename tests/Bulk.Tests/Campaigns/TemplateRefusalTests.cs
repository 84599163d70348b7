using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>A template that can never render, or cannot render for the first recipient, is refused at 400 next to its field, and nothing is enqueued.</summary>
[Collection(BrokerCollection.Name)]
public sealed class TemplateRefusalTests(BrokerFixture broker) : IAsyncLifetime
{
    private BulkSystem system = null!;

    public async Task InitializeAsync() => system = await BulkSystem.StartFrontAsync(broker);

    public async Task DisposeAsync() => await system.DisposeAsync();

    public static TheoryData<string, string, string> Templates => new()
    {
        { "html", "<p>{% include 'footer' %}</p>", "The 'include' tag is not supported" },
        { "text", "{% render 'footer' %}", "The 'render' tag is not supported" },
        { "text", "{% layout 'main' %}Hi", "The 'layout' tag is not supported" },
        { "text", "{%- include 'footer' -%}", "The 'include' tag is not supported" },
        { "text", "Hi {{ name | shout }}", "Unknown filter 'shout'" },
        { "subject", "Hi {{ name | upcase | nope: 3 }}", "Unknown filter 'nope'" },
        { "text", "{% frobnicate %}", "does not parse" },
        { "text", "{{ 1 | divided_by: 0 }}", "division by zero" },
        { "subject", "{{ n | divided_by: 0 }}", "division by zero" },
        { "text", "{% for i in (1..200000000) %}x{% endfor %}", "a range of 200000000 items is more than 100000" },
        { "html", "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}", "too many steps" },
        { "text", "{% assign s = 'xxxxxxxxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}", "grew past" },
        { "text", "{% for i in (1..90000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", "output grew past" },
        { "text", "{{ 'a,b' | split: ',' | join: ',' | split: '' | size | divided_by: 0 }}", "division by zero" },
        { "subject", "{% for i in (1..200) %}Hello {{ name }}{% endfor %}", "the subject grew past 998 characters" },
    };

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task ATemplateThatCannotRender_IsRefusedAt400NamingItsField_AndNothingIsEnqueued(string field, string template, string reason)
    {
        var campaign = new JsonObject
        {
            ["from"] = "news@example.com",
            ["subject"] = field == "subject" ? template : "Hello",
            [field == "html" ? "html" : "text"] = field == "subject" ? "Hi" : template,
            ["recipients"] = new JsonArray(new JsonObject { ["email"] = "a@example.org", ["data"] = new JsonObject { ["n"] = 2, ["name"] = "Ann" } }),
        };

        using var response = await system.Http.PostAsync("/campaigns", new StringContent(campaign.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var message = JsonDocument.Parse(body).RootElement.GetProperty("errors").GetProperty(field)[0].GetString();
        Assert.True(message!.Contains(reason, StringComparison.Ordinal), message);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task ATemplateThatFailsForTheFirstRecipientsData_IsRefusedNamingThatRecipient()
    {
        var campaign = """{"from":"news@example.com","subject":"s","text":"{{ 100 | divided_by: n }} each","recipients":[{"email":"a@example.org","data":{"n":0}},{"email":"b@example.org","data":{"n":4}}]}""";

        using var response = await system.Http.PostAsync("/campaigns", new StringContent(campaign, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("text")[0].GetString();
        Assert.Equal("The template cannot render for recipients[0]: division by zero.", message);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task TemplatesWithinTheLimits_AreAccepted()
    {
        var campaign = """{"from":"news@example.com","subject":"Hi {{ name | upcase }}","text":"{% for i in (1..1000) %}{{ i }} {% endfor %}{{ 10 | divided_by: n }}","html":"{% capture c %}<b>{{ name | escape }}</b>{% endcapture %}{{ c }}","recipients":[{"email":"a@example.org","data":{"n":2,"name":"Ann"}}]}""";

        var id = await system.PostAsync(campaign);

        Assert.NotEmpty(id);
    }
}
