using System.Net;
using System.Text.Json;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// Oversized inputs under the default limits are refused, before the whole body is read wherever that can be told
/// from outside, and enqueue nothing. What they cost in memory is measured by <c>./bulk bench</c>, not asserted here.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class OversizedInputTests(BrokerFixture broker) : IAsyncLifetime
{
    private BulkSystem system = null!;

    public async Task InitializeAsync() =>
        system = await BulkSystem.StartFrontAsync(broker, "--Front:CampaignsPerMinute=0");

    public async Task DisposeAsync() => await system.DisposeAsync();

    [Fact]
    public async Task A100MegabyteContentLength_IsA413_WithoutAByteOfTheBodySent()
    {
        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", [], OversizedBodies.HundredMegabytes, TimeSpan.FromSeconds(10));

        Assert.Equal(413, outcome.Status);
        Assert.Equal(0, outcome.BytesSent);
        Assert.Contains("Front__MaxBodyBytes", outcome.Body, StringComparison.Ordinal);
        await AssertNothingEnqueuedAndStillServingAsync();
    }

    [Fact]
    public async Task A100MegabyteChunkedBody_IsA413AtTheLimit_NotAtItsEnd()
    {
        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", OversizedBodies.Padded(OversizedBodies.HundredMegabytes),
            contentLength: null, TimeSpan.FromSeconds(60));

        // The Front answers 413 and hangs up: the client reads the answer, or finds its upload cut, which is the same refusal.
        Assert.True(outcome.Status == 413 || (outcome.Status is null && outcome.Cut), $"got {outcome}");
        Assert.True(outcome.BytesSent < OversizedBodies.HundredMegabytes, $"all {outcome.BytesSent} bytes were sent before the refusal");
        await AssertNothingEnqueuedAndStillServingAsync();
    }

    public static TheoryData<string, string, string> RefusedWith400 => new()
    {
        { "1 MB subject", "subject", "longer than 998 characters" },
        { "60 MB text", "text", "larger than 1048576 bytes (Front__MaxTemplateBytes)" },
        { "a million recipients", "recipients", "At most 100000 recipients per campaign" },
        { "3 million custom headers", "headers", "At most 50 custom headers" },
        { "one recipient with 3 million data values", "recipients[0].data", "at most 1000 values (Front__MaxDataValuesPerRecipient)" },
    };

    [Theory]
    [MemberData(nameof(RefusedWith400))]
    public async Task AnOversizedField_IsA400NamingIt(string input, string field, string reason)
    {
        var body = Body(input);

        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", body, OversizedBodies.LengthOf(body), TimeSpan.FromSeconds(60));

        AssertRefusal(outcome, field, reason);
        await AssertNothingEnqueuedAndStillServingAsync();
    }

    [Theory]
    [MemberData(nameof(RefusedWith400))]
    public async Task AnOversizedField_IsRefusedBeforeTheBodyEnds(string input, string field, string reason)
    {
        var body = Body(input);
        var length = OversizedBodies.LengthOf(body);

        // Only the first quarter, under a Content-Length that promises it all: far past where the limit is broken,
        // far short of the end. A Front that read the whole body before deciding would wait here for the rest.
        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", body.FirstBytes(length / 4), length, TimeSpan.FromSeconds(15));

        AssertRefusal(outcome, field, reason);
        await AssertNothingEnqueuedAndStillServingAsync();
    }

    [Fact]
    public async Task JsonNested100000Deep_IsA400OnDepth_BeforeTheBodyEnds()
    {
        var body = OversizedBodies.Nested(100_000);
        var length = OversizedBodies.LengthOf(body);

        var outcome = await RawUpload.PostAsync(system.FrontAddress, "/campaigns", body.FirstBytes(length / 4), length, TimeSpan.FromSeconds(15));

        Assert.True(outcome.Status == 400, $"got {outcome}");
        using var problem = JsonDocument.Parse(outcome.Body);
        var messages = problem.RootElement.GetProperty("errors").EnumerateObject().SelectMany(e => e.Value.EnumerateArray()).Select(m => m.GetString());
        Assert.Contains(messages, m => m!.Contains("maximum configured depth", StringComparison.Ordinal));
        await AssertNothingEnqueuedAndStillServingAsync();
    }

    private static IEnumerable<ReadOnlyMemory<byte>> Body(string input) => input switch
    {
        "1 MB subject" => OversizedBodies.WithSubject(1024 * 1024),
        "60 MB text" => OversizedBodies.WithText(60L * 1024 * 1024),
        "a million recipients" => OversizedBodies.WithRecipients(1_000_000),
        "3 million custom headers" => OversizedBodies.WithHeaders(3_000_000),
        "one recipient with 3 million data values" => OversizedBodies.WithData(3_000_000),
        _ => throw new ArgumentOutOfRangeException(nameof(input), input, "no such input"),
    };

    private static void AssertRefusal(UploadOutcome outcome, string field, string reason)
    {
        Assert.True(outcome.Status == 400, $"expected a 400 on {field}, got {outcome}");
        using var problem = JsonDocument.Parse(outcome.Body);
        var errors = problem.RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"errors should name '{field}' but were {errors}");
        Assert.Contains(reason, messages[0].GetString(), StringComparison.Ordinal);
    }

    private async Task AssertNothingEnqueuedAndStillServingAsync()
    {
        Assert.Equal(0u, await system.WorkQueueDepthAsync());
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
    }
}
