using System.Net;
using System.Text.Json;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>A refusal speaks of the request, not of Bulk's code or configuration: the field and what it should have been, the refused sender alone.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ErrorWordingTests(BrokerFixture broker)
{
    public static TheoryData<string, string, string> ValuesOfTheWrongKind => new()
    {
        { """{"from":"a@example.com","subject":"s","text":"t","recipients":"a@example.org"}""", "recipients", "$.recipients: expected an array of recipients" },
        { """{"from":5,"subject":"s","text":"t","recipients":["a@example.org"]}""", "from", "$.from: expected a string" },
        { """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":[1]}""", "headers", "$.headers: expected an object whose values are strings" },
        { """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Tag":1}}""", "headers.X-Tag", "$.headers.X-Tag: expected a string" },
        { """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"verp":"yes"}""", "verp", "$.verp: expected true or false" },
        { "[1,2,3]", "body", "$: expected a campaign object" },
        { "\"a campaign\"", "body", "$: expected a campaign object" },
        { """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org",7]}""", "recipients[1]", "A recipient is an email address string or an object" },
    };

    [Theory]
    [MemberData(nameof(ValuesOfTheWrongKind))]
    public async Task AValueOfTheWrongKind_IsNamedByItsPath_AndWhatItShouldBe_WithNoDotNetTypeInTheAnswer(string body, string field, string message)
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        var response = await system.Http.PostAsync("/campaigns", JsonBody.Of(body));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(text);
        Assert.StartsWith(message, problem.RootElement.GetProperty("errors").GetProperty(field)[0].GetString());
        Assert.DoesNotContain("System.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Bulk.", text, StringComparison.Ordinal);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    public static TheoryData<string, string, string?, string, string> RequestsTheFrameworkBinds => new()
    {
        { "POST", "/suppressions", """{"emails":5}""", "emails", "$.emails: expected an array" },
        { "POST", "/suppressions", """{"emails":["a@example.org"]""", "body", "" },
        { "POST", "/suppressions", "[]", "body", "$: expected an object" },
        { "GET", "/campaigns?limit=many", null, "limit", "expected a number, not 'many'" },
        { "GET", "/suppressions?offset=x", null, "offset", "expected a number, not 'x'" },
    };

    [Theory]
    [MemberData(nameof(RequestsTheFrameworkBinds))]
    public async Task ABodyOrQueryTheFrameworkCannotBind_IsA400NamingTheField_WithNoDotNetTypeInTheAnswer(
        string method, string path, string? body, string field, string message)
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);

        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : JsonBody.Of(body) };
        var response = await system.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(text);
        Assert.StartsWith(message, problem.RootElement.GetProperty("errors").GetProperty(field)[0].GetString());
        Assert.DoesNotContain("System.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Bulk.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("int?", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARefusedSender_IsNamedAlone_NotTheSendersThisFrontAllows()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker,
            "--Front:AllowedSenders:0=news@example.com", "--Front:AllowedSenders:1=@partner.example", "--Front:AllowedSenders:2=ceo@example.net");

        var response = await system.Http.PostAsync("/campaigns", JsonBody.Of(
            """{"from":"x@evil.test","bounce":"y@evil.test","subject":"s","text":"t","recipients":["a@example.org"]}"""));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        using var problem = JsonDocument.Parse(text);
        Assert.Equal("This Front may not send as 'x@evil.test' or 'y@evil.test' (Front__AllowedSenders).", problem.RootElement.GetProperty("detail").GetString());
        foreach (var allowed in new[] { "news@example.com", "partner.example", "ceo@example.net" })
        {
            Assert.DoesNotContain(allowed, text, StringComparison.OrdinalIgnoreCase);
        }
    }
}
