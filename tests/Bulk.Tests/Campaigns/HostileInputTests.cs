using System.Net;
using System.Text;
using Bulk.Tests.Infrastructure;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bulk.Tests.Campaigns;

/// <summary>Thousands of generated malformed and hostile requests: never a 5xx, never an error in the log, nothing enqueued for what is refused.</summary>
[Collection(BrokerCollection.Name)]
public sealed class HostileInputTests(BrokerFixture broker, ITestOutputHelper output)
{
    private const string Valid = """{"from":"News <news@example.com>","subject":"Hi {{ name }}","text":"Hello {{ name }}","html":"<p>{{ name }}</p>","recipients":["a@example.org",{"email":"b@example.org","data":{"name":"Bea"}}],"headers":{"X-Tag":"t"}}""";

    private sealed record Hostile(string Body, string ContentType);

    private static readonly string[] ContentTypes =
    [
        "application/json", "application/json; charset=utf-8", "application/problem+json", "text/plain", "",
        "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "application/xml",
    ];

    private static readonly string[] Pieces =
    [
        "{", "}", "[", "]", "\"", ",", ":", "null", "true", "1e999", "-0", "\\u0000", "\\ud800", "\r\n", "\u0000", "{{", "}}", "{%", "%}",
        "\"from\"", "\"recipients\"", "\"subject\"", "\"headers\"", "\"data\"", "\"email\"", "@", "<", ">", "Bcc: x@evil.test",
        "\"a@b\"", "\u202e", "😀", new string('x', 5000), new string('y', 120_000), "{% for i in (1..100000) %}x{% endfor %}", "[[[[[[[[[[",
    ];

    private static Gen<string> Mutated() =>
        from cut in Gen.Choose(0, Valid.Length)
        from length in Gen.Choose(0, 40)
        from piece in Gen.Elements(Pieces)
        from kind in Gen.Choose(0, 3)
        select kind switch
        {
            0 => Valid[..cut] + piece + Valid[cut..],
            1 => Valid[..cut] + Valid[Math.Min(Valid.Length, cut + length)..],
            2 => Valid[..cut],
            _ => Valid[..cut] + piece + Valid[Math.Min(Valid.Length, cut + length)..],
        };

    private static Gen<string> WrongTypes() =>
        from field in Gen.Elements("from", "subject", "text", "html", "recipients", "headers")
        from value in Gen.Elements("null", "42", "[]", "{}", "[1,2]", "\"\"", "true", "[{\"email\":5}]", "{\"a\":{\"b\":[]}}", "\"a\\r\\nb\"")
        select Valid.Replace($"\"{field}\":", $"\"{field}\":{value},\"ignored_{field}\":", StringComparison.Ordinal);

    private static Gen<string> Nested() =>
        from depth in Gen.Choose(1, 3000)
        from open in Gen.Elements("[", "{\"a\":")
        select string.Concat(Enumerable.Repeat(open, depth));

    private static Gen<string> Noise() =>
        from parts in Gen.ArrayOf(Gen.Elements(Pieces))
        select string.Concat(parts);

    private static Arbitrary<Hostile> Requests() =>
        (from body in Gen.OneOf(Mutated(), Mutated(), WrongTypes(), Nested(), Noise())
         from contentType in Gen.Elements(ContentTypes)
         select new Hostile(body, contentType)).ToArbitrary();

    [Fact]
    public async Task TenThousandHostileRequests_NeverGetA5xx_NorAnErrorInTheLog_AndOnlyAcceptedCampaignsAreEnqueued()
    {
        const int maxBodyBytes = 100_000;
        using var logs = new CapturedLogs();
        await using var system = await BulkSystem.StartFrontAsync(broker, logs, $"--Front:MaxBodyBytes={maxBodyBytes}",
            "--Front:CampaignsPerMinute=0"); // the battery is about input; the rate limit has its own test
        await Poll.UntilAsync(
            async () => (await system.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        // Before this the readiness probe may have logged "Unhealthy" at Error while the ledger caught up: not the battery's doing.
        var mark = logs.Mark();
        var accepted = 0;
        var statuses = new Dictionary<int, int>();

        var property = Prop.ForAll(Requests(), request =>
        {
            var bytes = Encoding.UTF8.GetBytes(request.Body);
            using var content = new ByteArrayContent(bytes);
            if (request.ContentType.Length > 0)
            {
                content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
            }

            HttpResponseMessage response;
            try
            {
                response = system.Http.PostAsync("/campaigns", content).GetAwaiter().GetResult();
            }
            catch (HttpRequestException) when (bytes.Length > maxBodyBytes)
            {
                // The Front refused the oversized body (413) and closed the connection before the upload ended.
                statuses[413] = statuses.GetValueOrDefault(413) + 1;
                return true;
            }

            using var _ = response;
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (status == 202)
            {
                accepted++;
            }

            if (status >= 500)
            {
                var detail = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                var shown = request.Body.Length > 300 ? request.Body[..300] + "…" : request.Body;
                throw new InvalidOperationException($"{status} for Content-Type '{request.ContentType}', body ({request.Body.Length} chars) {shown}: {detail}");
            }

            return status is >= 200 and < 500;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(10_000).WithQuietOnSuccess(true), property);

        output.WriteLine("statuses: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}")));
        var logged = logs.Since(mark);
        output.WriteLine($"log entries at Warning or above during the battery: {logged.Count}");
        foreach (var entry in logged.Take(20))
        {
            output.WriteLine($"  {entry}");
        }

        Assert.Equal((uint)accepted, await system.WorkQueueDepthAsync());
        Assert.Equal(HttpStatusCode.OK, (await system.Http.GetAsync("/healthz")).StatusCode);
        // The capture is wired: it saw the Front's own start-up warning (no API key, loopback only).
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Warning && e.Category.StartsWith("Bulk.", StringComparison.Ordinal));
        var failures = logs.FailuresSince(mark);
        Assert.True(failures.Count == 0,
            $"{failures.Count} log entries carry an exception or are at Error/Critical; the first ones:{Environment.NewLine}"
            + string.Join(Environment.NewLine, failures.Take(10)));
    }
}
