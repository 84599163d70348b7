using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Access;
using Bulk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Bulk.Tests.Campaigns;

/// <summary>API keys are tenants: a key sees and steers its own campaigns, another key's are unknown to it, and only an
/// admin key sees what all of them share (suppressions, dead letters) and every campaign.</summary>
[Collection(BrokerCollection.Name)]
public sealed class TenantTests(BrokerFixture broker)
{
    private const string Own = "tenant-own-0123456789abcdef";
    private const string Other = "tenant-other-0123456789abcdef";
    private const string Admin = "tenant-admin-0123456789abcdef";

    /// <summary>Who calls: the key that posted the campaign, another ordinary key, an admin key, or nobody.</summary>
    private static readonly (string Name, string? Key)[] Callers = [("own key", Own), ("other key", Other), ("admin key", Admin), ("no key", null)];

    private static readonly string[] KeySettings = [$"--Front:ApiKeys:0={Own}", $"--Front:ApiKeys:1={Other}", $"--Front:AdminKeys:0={Admin}"];

    [Fact]
    public async Task ACampaignIsReadByItsOwnKeyAndAnAdminKey_AnotherKeyGetsTheSame404AsForAnUnknownId_AndNoKeyA401()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);
        var id = await PostAsync(system, Own);

        var answers = new List<string>();
        foreach (var path in new[] { $"/campaigns/{id}", $"/campaigns/{id}/failures", $"/campaigns/{id}/events" })
        {
            answers.Add($"GET {path[10..].Replace(id, "{id}", StringComparison.Ordinal)}: " + string.Join(", ", await StatusesAsync(system, HttpMethod.Get, path)));
        }

        Assert.Equal(
        [
            "GET /{id}: own key 200, other key 404, admin key 200, no key 401",
            "GET /{id}/failures: own key 200, other key 404, admin key 200, no key 401",
            "GET /{id}/events: own key 200, other key 404, admin key 200, no key 401",
        ], answers);

        // The 404 says no more than an unknown id's: the id of another key's campaign tells nothing of it.
        var unknown = new string('0', 32);
        foreach (var suffix in new[] { "", "/failures", "/events" })
        {
            using var others = await SendAsync(system, HttpMethod.Get, $"/campaigns/{id}{suffix}", Other);
            using var nobodys = await SendAsync(system, HttpMethod.Get, $"/campaigns/{unknown}{suffix}", Other);
            Assert.Equal(await ProblemAsync(nobodys, unknown), await ProblemAsync(others, id));
        }
    }

    [Fact]
    public async Task TheListShowsAKeyItsOwnCampaigns_AndAnAdminKeyEveryOne()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);
        var own = await PostAsync(system, Own);
        var others = await PostAsync(system, Other);
        var admins = await PostAsync(system, Admin);

        Assert.Equal([own], await ListAsync(system, Own));
        Assert.Equal([others], await ListAsync(system, Other));
        Assert.Equal([admins, others, own], await ListAsync(system, Admin));
        using var none = await SendAsync(system, HttpMethod.Get, "/campaigns", null);
        using var postedByNone = await SendAsync(system, HttpMethod.Post, "/campaigns", null, JsonBody.Of(SampleCampaigns.Personal(1)));
        Assert.Equal((HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized), (none.StatusCode, postedByNone.StatusCode));
    }

    [Fact]
    public async Task TheOutcomesStreamRecordsEachCampaignsTenantAsADigestOfItsKey_NeverTheKey()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);
        var own = await PostAsync(system, Own);
        var admins = await PostAsync(system, Admin);

        var marker = JsonSerializer.SerializeToUtf8Bytes(OutcomeEvent.Marker(Guid.NewGuid().ToString("N")), BulkJson.Default.OutcomeEvent);
        var entries = await broker.ReadStreamAsync(system.Topology.OutcomesStream, marker, TimeSpan.FromSeconds(30));
        var text = string.Join("\n", entries.Select(e => System.Text.Encoding.UTF8.GetString(e)));
        var accepted = entries.Select(e => JsonSerializer.Deserialize(e, BulkJson.Default.OutcomeEvent)!)
            .Where(e => e.Type == OutcomeType.Accepted).ToDictionary(e => e.CampaignId, e => e.Tenant);

        Assert.Equal(IdempotencyScope.OfApiKey(Own), accepted[own]);
        Assert.Equal(IdempotencyScope.OfApiKey(Admin), accepted[admins]);
        Assert.DoesNotContain(Own, text, StringComparison.Ordinal);
        Assert.DoesNotContain(Admin, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PauseResumeAndCancel_AreForTheOwnKeyAndAnAdminKey_AnotherKeyGets404AndChangesNothing()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);
        var id = await PostAsync(system, Own);
        var other = await PostAsync(system, Own);

        var answers = new List<string>();
        async Task CallAsync(string action, string campaign, string who, string? key)
        {
            using var response = await SendAsync(system, HttpMethod.Post, $"/campaigns/{campaign}/{action}", key);
            answers.Add($"{action} by {who}: {(int)response.StatusCode}");
        }

        foreach (var action in new[] { "pause", "resume", "cancel" })
        {
            await CallAsync(action, id, "other key", Other);
            await CallAsync(action, id, "no key", null);
        }

        var untouched = await StatusAsync(system, id, Own);
        await CallAsync("pause", id, "own key", Own);
        await CallAsync("resume", id, "admin key", Admin);
        await CallAsync("pause", id, "admin key", Admin);
        await CallAsync("resume", id, "own key", Own);
        await CallAsync("cancel", id, "own key", Own);
        await CallAsync("cancel", other, "admin key", Admin);

        Assert.Equal(
        [
            "pause by other key: 404", "pause by no key: 401",
            "resume by other key: 404", "resume by no key: 401",
            "cancel by other key: 404", "cancel by no key: 401",
            "pause by own key: 200", "resume by admin key: 200", "pause by admin key: 200", "resume by own key: 200",
            "cancel by own key: 200", "cancel by admin key: 200",
        ], answers);
        // Neither paused nor cancelled by the other key's calls.
        Assert.Equal(("queued", false), (untouched.GetProperty("status").GetString(), untouched.TryGetProperty("cancelledAt", out var at) && at.ValueKind != JsonValueKind.Null));
        Assert.Equal("cancelled", (await StatusAsync(system, other, Own)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task AnyKeyMaySuppressAnAddress_OnlyAnAdminKeyMayListReadOrDeleteThem()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);

        var answers = new List<string>
        {
            "POST /suppressions: " + string.Join(", ", await StatusesAsync(system, HttpMethod.Post, "/suppressions",
                () => JsonBody.Of("""{"emails":["gone@example.org"]}"""))),
            "GET /suppressions: " + string.Join(", ", await StatusesAsync(system, HttpMethod.Get, "/suppressions")),
            "GET /suppressions/{email}: " + string.Join(", ", await StatusesAsync(system, HttpMethod.Get, "/suppressions/gone@example.org")),
        };
        // Deleting goes last, by the admin key, which takes the address off: the keys before it are refused, not told 404.
        answers.Add("DELETE /suppressions/{email}: " + string.Join(", ", await StatusesAsync(system, HttpMethod.Delete, "/suppressions/gone@example.org",
            order: [("own key", Own), ("other key", Other), ("no key", null), ("admin key", Admin)])));

        Assert.Equal(
        [
            "POST /suppressions: own key 200, other key 200, admin key 200, no key 401",
            "GET /suppressions: own key 403, other key 403, admin key 200, no key 401",
            "GET /suppressions/{email}: own key 403, other key 403, admin key 200, no key 401",
            "DELETE /suppressions/{email}: own key 403, other key 403, no key 401, admin key 204",
        ], answers);
        using var refused = await SendAsync(system, HttpMethod.Get, "/suppressions", Own);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Front__AdminKeys", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnlyAnAdminKey_FromTheSettingsOrTheAdminKeysFile_MayCountOrReplayDeadLetters()
    {
        const string fromFile = "tenant-admin-file-0123456789abcdef";
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, $"# admin keys\n{fromFile}\n");
        try
        {
            await using var system = await BulkSystem.StartFrontAsync(broker, [.. KeySettings, $"--Front:AdminKeysFile={file}"]);

            var answers = new List<string>();
            foreach (var (method, path) in new[] { (HttpMethod.Get, "/dead-letters"), (HttpMethod.Post, "/dead-letters/replay") })
            {
                answers.Add($"{method} {path}: " + string.Join(", ", await StatusesAsync(system, method, path,
                    order: [.. Callers, ("admin key from the file", fromFile)])));
            }

            Assert.Equal(
            [
                "GET /dead-letters: own key 403, other key 403, admin key 200, no key 401, admin key from the file 200",
                "POST /dead-letters/replay: own key 403, other key 403, admin key 200, no key 401, admin key from the file 200",
            ], answers);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task ACampaignsTenantSurvivesARestart_AndEveryFrontAgreesOnIt_WhateverOrderItsKeysAreListedIn()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker, KeySettings);
        var id = await PostAsync(system, Own);
        await system.FrontServices.GetRequiredService<OutcomeLog>().WriteSnapshotNowAsync(CancellationToken.None);

        await system.RestartFrontAsync();
        var restarted = system.FrontServices.GetRequiredService<OutcomeLog>();
        Assert.True(await restarted.WaitForStartupReplayAsync(TimeSpan.FromSeconds(30)));
        Assert.NotNull(restarted.LoadedSnapshot);
        using var another = await system.StartAnotherFrontAsync($"--Front:ApiKeys:0={Other}", $"--Front:ApiKeys:1={Own}", $"--Front:AdminKeys:0={Admin}");

        foreach (var http in new[] { system.Http, another })
        {
            Assert.Equal(
                ["own key 200", "other key 404", "admin key 200", "no key 401"],
                await StatusesAsync(http, HttpMethod.Get, $"/campaigns/{id}"));
        }

        Assert.Equal([id], await ListAsync(system, Own));
        Assert.Empty(await ListAsync(system, Other));
    }

    [Fact]
    public async Task WithoutKeys_EveryCallerOnThisMachineSeesAndSteersEverything_AsBefore()
    {
        await using var system = await BulkSystem.StartFrontAsync(broker);
        var id = await system.PostAsync(SampleCampaigns.Personal(1));

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, "/campaigns"), (HttpMethod.Get, $"/campaigns/{id}"), (HttpMethod.Get, $"/campaigns/{id}/failures"),
            (HttpMethod.Post, $"/campaigns/{id}/pause"), (HttpMethod.Get, "/suppressions"), (HttpMethod.Get, "/dead-letters"),
        })
        {
            using var response = await system.Http.SendAsync(new HttpRequestMessage(method, path));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{method} {path}: {(int)response.StatusCode}");
        }
    }

    /// <summary>A problem's members but its trace id, with the campaign id in it made <c>{id}</c>.</summary>
    private static async Task<string> ProblemAsync(HttpResponseMessage response, string id)
    {
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return string.Join("; ", problem.RootElement.EnumerateObject().Where(p => p.Name != "traceId")
            .Select(p => $"{p.Name}={p.Value.ToString().Replace(id, "{id}", StringComparison.Ordinal)}"));
    }

    private static async Task<string> PostAsync(BulkSystem system, string key)
    {
        using var response = await SendAsync(system, HttpMethod.Post, "/campaigns", key, JsonBody.Of(SampleCampaigns.Personal(2)));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<string[]> ListAsync(BulkSystem system, string key)
    {
        using var response = await SendAsync(system, HttpMethod.Get, "/campaigns", key);
        using var list = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. list.RootElement.GetProperty("campaigns").EnumerateArray().Select(c => c.GetProperty("id").GetString()!)];
    }

    private static async Task<JsonElement> StatusAsync(BulkSystem system, string id, string key)
    {
        using var response = await SendAsync(system, HttpMethod.Get, $"/campaigns/{id}", key);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    /// <summary>What each caller is answered, as "own key 200"; an event stream's headers are enough.</summary>
    private static Task<List<string>> StatusesAsync(BulkSystem system, HttpMethod method, string path,
        Func<HttpContent>? content = null, (string Name, string? Key)[]? order = null) =>
        StatusesAsync(system.Http, method, path, content, order);

    private static async Task<List<string>> StatusesAsync(HttpClient http, HttpMethod method, string path,
        Func<HttpContent>? content = null, (string Name, string? Key)[]? order = null)
    {
        var answers = new List<string>();
        foreach (var (name, key) in order ?? Callers)
        {
            using var response = await SendAsync(http, method, path, key, content?.Invoke());
            answers.Add($"{name} {(int)response.StatusCode}");
        }

        return answers;
    }

    private static Task<HttpResponseMessage> SendAsync(BulkSystem system, HttpMethod method, string path, string? key, HttpContent? content = null) =>
        SendAsync(system.Http, method, path, key, content);

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, string? key, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        // An event stream stays open while its campaign goes on: its status line is the answer.
        return http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }
}
