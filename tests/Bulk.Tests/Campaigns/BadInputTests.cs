using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>Every bad request gets its status code and a problem+json naming the field, and enqueues nothing.</summary>
[Collection(BrokerCollection.Name)]
public sealed class BadInputTests(BrokerFixture broker) : IAsyncLifetime
{
    private BulkSystem system = null!;

    public async Task InitializeAsync() =>
        system = await BulkSystem.StartFrontAsync(broker, "--Front:MaxRecipients=50", "--Front:MaxBodyBytes=200000",
            "--Front:MaxDataValuesPerRecipient=4", "--Front:MaxDataValues=6");

    public async Task DisposeAsync() => await system.DisposeAsync();

    public static TheoryData<string, string, string> InvalidCampaigns => new()
    {
        { "missing from", """{"subject":"s","text":"t","recipients":["a@example.org"]}""", "from" },
        { "from not a mailbox", """{"from":"nobody","subject":"s","text":"t","recipients":["a@example.org"]}""", "from" },
        { "from with a line break", """{"from":"a@example.com\r\nBcc: x@evil.test","subject":"s","text":"t","recipients":["a@example.org"]}""", "from" },
        { "missing subject", """{"from":"a@example.com","text":"t","recipients":["a@example.org"]}""", "subject" },
        { "subject with CR/LF", """{"from":"a@example.com","subject":"hi\r\nBcc: x@evil.test","text":"t","recipients":["a@example.org"]}""", "subject" },
        { "subject with NUL", """{"from":"a@example.com","subject":"hi\u0000","text":"t","recipients":["a@example.org"]}""", "subject" },
        { "no body", """{"from":"a@example.com","subject":"s","recipients":["a@example.org"]}""", "text" },
        { "template that does not parse", """{"from":"a@example.com","subject":"s","html":"<p>{% if %}</p>","recipients":["a@example.org"]}""", "html" },
        { "subject template that does not parse", """{"from":"a@example.com","subject":"Hi {{ name ","text":"t","recipients":["a@example.org"]}""", "subject" },
        { "empty recipients", """{"from":"a@example.com","subject":"s","text":"t","recipients":[]}""", "recipients" },
        { "missing recipients", """{"from":"a@example.com","subject":"s","text":"t"}""", "recipients" },
        { "bad address at index 2", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org","b@example.org","not-an-address"]}""", "recipients[2].email" },
        { "recipient object without email", """{"from":"a@example.com","subject":"s","text":"t","recipients":[{"data":{"name":"x"}}]}""", "recipients[0].email" },
        { "recipient neither string nor object", """{"from":"a@example.com","subject":"s","text":"t","recipients":[42]}""", "recipients[0]" },
        { "recipient data with half a UTF-16 pair", """{"from":"a@example.com","subject":"s","text":"t","recipients":[{"email":"a@example.org","data":{"name":"x\ud800y"}}]}""", "recipients[0]" },
        { "recipient data not an object", """{"from":"a@example.com","subject":"s","text":"t","recipients":[{"email":"a@example.org","data":[1]}]}""", "recipients[0]" },
        { "reserved header", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Bcc":"x@evil.test"}}""", "headers.Bcc" },
        { "header value with LF", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Tag":"a\nb"}}""", "headers.X-Tag" },
        { "header value with CR", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Tag":"a\rBcc: x@evil.test"}}""", "headers.X-Tag" },
        { "header value with NUL", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Tag":"a\u0000b"}}""", "headers.X-Tag" },
        { "header name with a colon", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Tag:":"a"}}""", "headers.X-Tag:" },
        { "header Bulk sets: List-Unsubscribe", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"list-unsubscribe":"<https://evil.test>"}}""", "headers.list-unsubscribe" },
        { "header Bulk sets: Message-ID", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Message-ID":"<x@evil.test>"}}""", "headers.Message-ID" },
        { "header Bulk sets: Return-Path", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Return-Path":"<x@evil.test>"}}""", "headers.Return-Path" },
        { "a Content- header", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Content-Type":"text/html"}}""", "headers.Content-Type" },
        { "a Resent- header", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Resent-From":"x@evil.test"}}""", "headers.Resent-From" },
        { "an X-Bulk- header", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"X-Bulk-Campaign":"other"}}""", "headers.X-Bulk-Campaign" },
        { "a trust header: ARC- of any name", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"ARC-Foo":"i=1"}}""", "headers.ARC-Foo" },
        { "a trust header: Received-SPF", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Received-SPF":"pass"}}""", "headers.Received-SPF" },
        { "a trust header: Authentication-Results-Original", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Authentication-Results-Original":"mx; dmarc=pass"}}""", "headers.Authentication-Results-Original" },
        { "a sender named as another address", """{"from":"\"ceo@bank.com\" <a@example.com>","subject":"s","text":"t","recipients":["a@example.org"]}""", "from" },
        { "a Reply-To named as another address", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"headers":{"Reply-To":"\"ceo@bank.com\" <a@example.com>"}}""", "headers.Reply-To" },
        { "VERP without a bounce address", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"verp":true}""", "verp" },
        { "bounce address not an address", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"bounce":"Bounces <b@example.com>"}""", "bounce" },
        { "VERP bounce local part too long", """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org"],"bounce":"a-very-long-bounce-mailbox-name@example.com","verp":true}""", "bounce" },
        { "a recipient's data with more values than allowed (nested ones count)", """{"from":"a@example.com","subject":"s","text":"t","recipients":["x@example.org",{"email":"a@example.org","data":{"a":1,"b":[1,2],"c":{}}}]}""", "recipients[1].data" },
        { "all recipients' data with more values than allowed", """{"from":"a@example.com","subject":"s","text":"t","recipients":[{"email":"a@example.org","data":{"a":1,"b":2,"c":3}},{"email":"b@example.org","data":{"a":1,"b":2}},{"email":"c@example.org","data":{"a":1,"b":2}}]}""", "recipients" },
        { "wrong type for subject", """{"from":"a@example.com","subject":5,"text":"t","recipients":["a@example.org"]}""", "subject" },
        { "malformed JSON", """{"from":"a@example.com",""", "body" },
        { "JSON that is not an object", "[1,2,3]", "body" },
        { "null body", "null", "body" },
    };

    [Theory]
    [MemberData(nameof(InvalidCampaigns))]
    public async Task AnInvalidCampaign_IsRefusedWith400NamingTheField_AndNothingIsEnqueued(string because, string body, string field)
    {
        var response = await system.Http.PostAsync("/campaigns", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{because}: got {(int)response.StatusCode}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var errors = problem.RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"{because}: errors should name '{field}' but were {errors}");
        Assert.False(string.IsNullOrWhiteSpace(messages[0].GetString()));
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task MoreRecipientsThanAllowed_IsA400OnRecipients()
    {
        var recipients = string.Join(",", Enumerable.Range(0, 51).Select(i => $"\"u{i}@example.org\""));
        var response = await system.Http.PostAsync("/campaigns", new StringContent(
            $$"""{"from":"a@example.com","subject":"s","text":"t","recipients":[{{recipients}}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Contains("50", problem.RootElement.GetProperty("errors").GetProperty("recipients")[0].GetString());
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    public async Task ANonJsonBody_IsA415(string? contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"from":"a@example.com"}"""));
        if (contentType is not null)
        {
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        var response = await system.Http.PostAsync("/campaigns", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task ABodyOverTheLimit_IsA413()
    {
        var padding = new string('x', 300_000);
        var response = await system.Http.PostAsync("/campaigns", new StringContent(
            $$"""{"from":"a@example.com","subject":"s","text":"{{padding}}","recipients":["a@example.org"]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }

    [Fact]
    public async Task AChunkedBodyOverTheLimit_IsA413Too()
    {
        var padding = new string('x', 300_000);
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(
            $$"""{"from":"a@example.com","subject":"s","text":"{{padding}}","recipients":["a@example.org"]}""")));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/campaigns") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        var response = await system.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
    }
}
