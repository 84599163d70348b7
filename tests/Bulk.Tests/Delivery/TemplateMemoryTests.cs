using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bulk.Tests.Infrastructure;
using Xunit.Abstractions;
using static Bulk.Tests.Infrastructure.ProcessMemory;

namespace Bulk.Tests.Delivery;

/// <summary>
/// The template of issue #24 (a 1 MB value replaced character by character with 1,000 characters, a gigabyte-long
/// result) against a real Front and a real Worker: neither's resident memory rises by more than a few times what one
/// rendering may build, where it rose by gigabytes.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class TemplateMemoryTests(BrokerFixture broker, ITestOutputHelper output)
{
    /// <summary>A few times the 32 MiB one rendering may build at the defaults (<c>Templates__MaxAllocatedChars</c>, two
    /// bytes a character), and room for the 1 MB body and its parsed template. It was gigabytes.</summary>
    private const long AllowedRise = 256L * 1024 * 1024;

    private static readonly string Attack =
        "{% assign s = \"" + new string('x', 1_000_000) + "\" %}{% assign t = s | replace: \"x\", \"" + new string('y', 1_000) + "\" %}";

    [Fact]
    public async Task TheFront_RefusesFourGigabyteTemplatesAtOnce_WithItsMemoryRisingByAFewTimesTheLimits()
    {
        await using var system = BulkSystem.On(broker.Uri, broker);
        var front = await system.StartFrontProcessAsync("--Front:CampaignsPerMinute=0");
        // The code paths compiled and the broker's channels open before the baseline.
        await system.PostAsync(Campaign("Hello {{ name }}", ("a@example.org", null)));
        var baseline = Resident(front.Id);
        Assert.True(ResetPeak(front.Id), "this kernel does not let the test reset the Front's VmHWM");

        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            using var response = await system.Http.PostAsync("/campaigns", new StringContent(Campaign(Attack, ("a@example.org", null)), Encoding.UTF8, "application/json"));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));
        var rise = Peak(front.Id) - baseline;
        output.WriteLine($"Front: baseline {Mb(baseline)} MB, peak rise {Mb(rise)} MB for four at once");

        Assert.All(answers, a =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, a.StatusCode);
            var reason = JsonDocument.Parse(a.Body).RootElement.GetProperty("errors").GetProperty("text")[0].GetString();
            Assert.Contains("grew past", reason, StringComparison.Ordinal);
        });
        Assert.True(rise <= AllowedRise, $"the Front's resident memory rose {Mb(rise)} MB over {Mb(baseline)} MB, more than {Mb(AllowedRise)} MB");
    }

    [Fact]
    public async Task AWorker_FailsTheRecipientsForWhomTheTemplateExplodes_WithItsMemoryRisingByAFewTimesTheLimits()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var worker = await system.StartWorkerProcessAsync(sink.Port);
        var warm = await system.PostAsync(Campaign("Hello {{ name }}", ("warm@example.org", null)));
        await system.WaitForStatusAsync(warm, s => s.Pending == 0, TimeSpan.FromSeconds(60));
        var baseline = Resident(worker.Id);
        Assert.True(ResetPeak(worker.Id), "this kernel does not let the test reset the Worker's VmHWM");

        // The Front renders the first recipient only, for whom the template is harmless: it is accepted.
        var id = await system.PostAsync(Campaign("{% if boom %}" + Attack + "{% endif %}Hello",
            ("a@example.org", null), ("b@example.org", true), ("c@example.org", true), ("d@example.org", true)));
        var status = await system.WaitForStatusAsync(id, s => s.Pending == 0, TimeSpan.FromSeconds(120));
        var rise = Peak(worker.Id) - baseline;
        output.WriteLine($"Worker: baseline {Mb(baseline)} MB, peak rise {Mb(rise)} MB for three recipients");

        Assert.Equal((1, 3), (status.Delivered, status.Failed));
        Assert.True(rise <= AllowedRise, $"the Worker's resident memory rose {Mb(rise)} MB over {Mb(baseline)} MB, more than {Mb(AllowedRise)} MB");
    }

    private static string Campaign(string text, params (string Email, bool? Boom)[] recipients) => new JsonObject
    {
        ["from"] = "news@example.com",
        ["subject"] = "Hello",
        ["text"] = text,
        ["recipients"] = new JsonArray([.. recipients.Select(r => (JsonNode)new JsonObject
        {
            ["email"] = r.Email,
            ["data"] = r.Boom is { } boom ? new JsonObject { ["boom"] = boom, ["name"] = "Ann" } : new JsonObject { ["name"] = "Ann" },
        })]),
    }.ToJsonString();
}
