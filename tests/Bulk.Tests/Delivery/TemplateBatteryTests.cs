using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Bulk.Broker.Outcomes;
using Bulk.Contracts.Outcomes;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bulk.Tests.Delivery;

/// <summary>
/// Hundreds of generated Liquid campaigns (loops over huge ranges, nesting, self-doubling strings, filters with bad
/// arguments, includes, broken tags) with hostile recipient data, through a real Front to a real Worker: each is refused
/// at 400 or accepted, every accepted one ends within a minute with counts that add up, and the Worker is still fast after.
/// </summary>
/// <remarks>
/// The cases come from a seed printed at the start (replay one with <c>BULK_BATTERY_SEED</c>); <c>BULK_BATTERY_CAMPAIGNS</c>
/// changes how many are generated.
/// </remarks>
[Collection(BrokerCollection.Name)]
public sealed class TemplateBatteryTests(BrokerFixture broker, ITestOutputHelper output)
{
    private static readonly TimeSpan FinalWithin = TimeSpan.FromSeconds(60);

    /// <summary>The variables the templates read; recipients' data is keyed by the same names (except <c>nothing</c>).</summary>
    private static readonly string[] DataKeys = ["name", "n", "m", "items", "big", "user", "flag", "price", "when", "tags"];

    private static readonly string[] Variables = [.. DataKeys, "nothing", "email", "unsubscribe_url", "i1", "i2", "s1", "c1", "forloop.index"];

    // ---- Recipient data, as raw JSON (so that a lone surrogate escape or 1e308 reaches the Front exactly as written) ----

    private static string Json(string value) => JsonSerializer.Serialize(value);

    private static readonly string[] Plain =
    [
        Json(""), Json("Ann"), Json("Zoë 😀 ΩΣ 中文 مرحبا"), Json("<b>&amp;</b>\"'</script>"), Json("a,b,,c"), Json("2024-02-29T12:00:00Z"),
        Json("not a date"), Json("12"), Json("-3.5"), "0", "-1", "7", "3.14159", "1E-300", "1000000000", "-1000000000", "-0", "true", "false", "null",
    ];

    /// <summary>Values that stress a rendering: ~50 KB strings, numbers past what Liquid's decimals hold, header injection, control characters.</summary>
    private static readonly string[] Hostile =
    [
        Json(new string('x', 50_000)), Json(string.Concat(Enumerable.Repeat("ünï😀", 10_000))), "1e308", "-1e308", "123456789012345678901234567890",
        Json("line\r\nBcc: evil@example.org"), Json("nul\u0000byte\u001f"),
    ];

    /// <summary>Refused by the Front's body guard wherever it is: kept rare so that it does not hide the rest.</summary>
    private const string LoneSurrogate = "\"lone \\ud800 surrogate\"";

    private static readonly Gen<string> Scalar = Gen.Frequency(
        (400, Gen.Elements(Plain)),
        (32, Gen.Elements(Hostile)),
        (1, Gen.Constant(LoneSurrogate)));

    private static Gen<string> DataValue(int depth) => depth == 0
        ? Scalar
        : Gen.Frequency(
            (12, Scalar),
            (1, Gen.Constant("[]")),
            (1, Gen.Constant("{}")),
            (1, Gen.Constant("[" + string.Join(',', Enumerable.Range(-150, 300)) + "]")),
            (2, from items in Gen.ListOf(DataValue(depth - 1), 3) select "[" + string.Join(',', items) + "]"),
            (2, from first in DataValue(depth - 1)
                from age in DataValue(depth - 1)
                from tags in DataValue(depth - 1)
                select $"{{\"first\":{first},\"age\":{age},\"tags\":{tags},\"name\":{first}}}"));

    /// <summary>One recipient's <c>data</c> object, or null for a bare address without data.</summary>
    private static Gen<string?> RecipientData(IReadOnlyList<string> keys) => Gen.Frequency(
        (1, Gen.Constant<string?>(null)),
        (8, from values in Gen.CollectToArray(keys, _ => DataValue(2))
            select (string?)("{" + string.Join(',', keys.Select((k, i) => $"{Json(k)}:{values[i]}")) + "}")));

    // ---- Liquid ----

    private static readonly string[] Texts =
    [
        "Hello ", "Dear ", "<p>", "</p>", " & ", "ü€😀 ", "—", "\n", "{ not liquid }", ", ", "<a href=\"{{ unsubscribe_url }}\">unsubscribe</a>",
    ];

    private static readonly string[] Heads =
    [
        .. Variables, "user.first", "user.name", "user.tags[0]", "items[0]", "items[-1]", "items[n]", "items.size", "items.first", "big.size",
        "name.size", "'abc'", "''", "42", "-7", "1000000000", "1.5", "nil", "true", "(1..5)",
        "(1..1000000000)", "(n..m)",
    ];

    /// <summary>Fluid's filters (and one it does not have), given arguments that are often wrong.</summary>
    private static readonly string[] Filters =
    [
        "append", "prepend", "divided_by", "times", "modulo", "plus", "minus", "split", "join", "slice", "truncate", "truncatewords",
        "replace", "replace_first", "remove", "upcase", "downcase", "capitalize", "size", "first", "last", "default", "date", "round",
        "ceil", "floor", "abs", "at_least", "at_most", "escape", "strip_html", "url_encode", "sort", "reverse", "uniq", "map", "where",
        "compact", "concat", "newline_to_br", "strip", "sum", "json",
    ];

    private static readonly string[] UnknownFilters = ["shout", "exec", "system", "include_file"];

    private static readonly string[] Arguments =
    [
        "0", "-1", "1", "2", "3", "1000000000", "-1000000000", "1.5", "'x'", "''", "','", "'%Y-%m-%d %H:%M'",
        "'abc', 'def'", "n", "m", "name", "big", "items", "nothing", "nil", "true", "1, 2", "'a', 'b', 'c'", "0, 1000000000", "-5, 3",
    ];

    private static readonly Gen<string> FilterCall =
        from name in Gen.Elements(Filters)
        from argument in Gen.Frequency((1, Gen.Constant("")), (3, Gen.Elements(Arguments).Select(a => ": " + a)))
        select name + argument;

    private static readonly Gen<string> Output =
        from head in Gen.Elements(Heads)
        from count in Gen.Choose(0, 3)
        from filters in Gen.ArrayOf(FilterCall, count)
        select "{{ " + head + string.Concat(filters.Select(f => " | " + f)) + " }}";

    private static readonly string[] Bounds =
    [
        "0", "1", "2", "5", "10", "100", "1000", "-3", "100000", "100001", "1000000", "1000000000", "-1000000000", "2147483648",
        "n", "m", "i1", "nothing", "items.size", "name.size",
    ];

    private static readonly string[] Conditions =
    [
        "n > 3", "name == 'Ann'", "items contains 2", "flag", "nothing", "n and flag or name", "big.size > 100", "user.age < 0",
        "name contains 'ü'", "items == empty", "n != m", "forloop.first",
    ];

    private static readonly string[] Broken =
    [
        "{% if n %}", "{% endfor %}", "{{ name", "{% for %}", "{% assign %}", "{% endif %}", "{% case %}", "{{ name | }}", "{% raw %}",
        "{% comment %}", "{% for i in (1..) %}{% endfor %}", "{% unless %}x{% endunless %}", "}}{%", "{% else %}",
        // Fluid 2.41 does not parse these either.
        "{% for i in (1..'x') %}{% endfor %}", "{% for i in (1.5..3) %}{% endfor %}", "{% for x in (1..n) %}{% else %}{% endfor %}",
        "{{ 99999999999999999999999999999 }}", "{%- liquid\nassign s1 = name | upcase\necho s1\n-%}",
    ];

    private static readonly string[] FileTags =
    [
        "{% include 'footer' %}", "{% render 'footer' %}", "{% render 'x', a: 1 %}", "{%- include 'x' -%}", "{% layout 'main' %}",
    ];

    private static readonly string[] Others =
    [
        "{% raw %}{{ not rendered }}{% endraw %}", "{% comment %}{{ 1 | divided_by: 0 }}{% endcomment %}", "{% cycle 'a', 'b' %}",
        "{% increment c1 %}", "{% decrement c1 %}", "{% break %}", "{% continue %}",
        "{{- name -}}", "{% echo n | plus: 1 %}",
    ];

    /// <summary>Templates whose output or values grow fast: self-doubling strings, long loops, huge literals.</summary>
    private static Gen<string> Heavy(int d) => Gen.OneOf(
        from seed in Gen.Elements("'ab'", "name", "big", "'x'", "items")
        from k in Gen.Elements("3", "10", "20", "22", "40", "n", "1000")
        select $"{{% assign s{d} = {seed} %}}{{% for k{d} in (1..{k}) %}}{{% assign s{d} = s{d} | append: s{d} %}}{{% endfor %}}{{{{ s{d} | size }}}}",
        from k in Gen.Elements("10", "1000", "40000", "90000", "n", "100000")
        from piece in Gen.Elements(new string('y', 100), "{{ big }}", "{{ name }}", "{{ items | join: ',' }}")
        select $"{{% for k{d} in (1..{k}) %}}{piece}{{% endfor %}}",
        from n in Gen.Elements(1_000, 100_000, 600_000, 1_100_000)
        select new string('L', n),
        Gen.Elements(
            "{{ big | append: big | append: big | size }}", "{{ big | split: '' | join: ',' | size }}", "{{ big | split: '' | reverse | join: '' | size }}",
            "{{ big | replace: 'x', big | size }}", "{{ name | split: '' | sort | uniq | join: '' }}", "{{ items | concat: items | concat: items | size }}"));

    /// <summary>Pieces that render or not depending on the recipient's data: the first recipient may pass the Front, the next fail on a Worker.</summary>
    private static readonly string[] DataDriven =
    [
        "{{ 100 | divided_by: n }}", "{{ 7 | modulo: m }}", "{% for k8 in (1..n) %}{{ big }}{% endfor %}", "{% for k8 in (n..m) %}x{% endfor %}",
        "{% assign s8 = big %}{% for k8 in (1..n) %}{% assign s8 = s8 | append: s8 %}{% endfor %}{{ s8 | size }}",
        "{{ items | slice: n, m | join: ',' }}", "{{ name | truncate: n }}", "{{ price | round: n }}", "{{ when | date: '%Y' }}",
        "{{ items | map: 'name' | join: n }}", "{{ user.tags | sort | join }}", "{{ big | split: name | size }}", "{{ name | times: n }}",
        "{{ n | times: 1000000000 | times: 1000000000 | times: 1000000000 }}", "{{ big | replace: name, big | size }}",
        "{% for x8 in items %}{% for y8 in items %}{% for z8 in items %}{{ z8 }}{% endfor %}{% endfor %}{% endfor %}",
    ];

    private static Gen<string> Leaf(int d) => Gen.Frequency(
        (10, Gen.Elements(Texts)),
        (12, Output),
        (2, Gen.Elements(Others)),
        (3, from head in Gen.Elements(Heads)
            from filter in FilterCall
            select $"{{% assign s{d} = {head} | {filter} %}}{{{{ s{d} }}}}"),
        (1, Gen.Elements(DataDriven)),
        (1, Heavy(d)));

    private static Gen<string> Sequence(Gen<string> piece) =>
        from count in Gen.Frequency((3, Gen.Constant(1)), (3, Gen.Constant(2)), (1, Gen.Constant(3)))
        from pieces in Gen.ArrayOf(piece, count)
        select string.Concat(pieces);

    private static readonly Gen<string> Small = Gen.OneOf(Gen.Elements(Texts), Output);

    /// <summary>A block at nesting level <paramref name="d"/> around bodies from <paramref name="inner"/>.</summary>
    private static Gen<string> Block(int d, Gen<string> inner) => Gen.OneOf(
        from a in Gen.Elements(Bounds)
        from b in Gen.Elements(Bounds)
        from modifier in Gen.Elements("", "", " limit: 3", " offset: 2", " reversed", " limit: 1000000000", " offset: n", " limit: -1")
        from body in inner
        select $"{{% for i{d} in ({a}..{b}){modifier} %}}{body}{{% endfor %}}",
        from collection in Gen.Elements("items", "tags", "user", "name", "big", "nothing", "user.tags")
        from body in inner
        from empty in Small
        select $"{{% for x{d} in {collection} %}}{body}{{% else %}}{empty}{{% endfor %}}",
        from condition in Gen.Elements(Conditions)
        from other in Gen.Elements(Conditions)
        from yes in inner
        from maybe in Small
        from no in inner
        select $"{{% if {condition} %}}{yes}{{% elsif {other} %}}{maybe}{{% else %}}{no}{{% endif %}}",
        from condition in Gen.Elements(Conditions)
        from body in inner
        select $"{{% unless {condition} %}}{body}{{% endunless %}}",
        from subject in Gen.Elements("n", "name", "flag", "items", "nothing")
        from one in inner
        from two in Small
        from other in Small
        select $"{{% case {subject} %}}{{% when 1, 2 %}}{one}{{% when 'Ann' %}}{two}{{% else %}}{other}{{% endcase %}}",
        from body in inner
        select $"{{% capture c{d} %}}{body}{{% endcapture %}}{{{{ c{d} | size }}}}{{{{ c{d} | upcase }}}}");

    /// <summary>Templates nested up to <c>index</c> levels deep (so up to 4 nested loops).</summary>
    private static readonly Gen<string>[] Templates = BuildTemplates(4);

    private static Gen<string>[] BuildTemplates(int depth)
    {
        var templates = new Gen<string>[depth + 1];
        templates[0] = Sequence(Leaf(0));
        for (var d = 1; d <= depth; d++)
        {
            templates[d] = Sequence(Gen.Frequency((3, Leaf(d)), (2, Block(d, templates[d - 1]))));
        }

        return templates;
    }

    private sealed record Generated(string Subject, string? Text, string? Html, string?[] Data);

    /// <summary>What one campaign may carry on top of its templates: nothing, or something the Front must refuse or a Worker bound.</summary>
    private static readonly Gen<string> Hazards = Gen.Frequency(
        (10, Gen.Constant("")),
        (2, Gen.Elements(Broken)),
        (1, Gen.Elements(FileTags)),
        (1, from filter in Gen.Elements(UnknownFilters) select $"{{{{ name | upcase | {filter}: 1 }}}}"),
        (4, Heavy(9)),
        (6, Gen.Elements(DataDriven)));

    private static readonly Gen<Generated> Campaigns =
        from depth in Gen.Choose(0, 4)
        from subject in Gen.Frequency(
            (2, Gen.Elements("Hello {{ name }}", "News", "{{ n | plus: 1 }} offers for {{ user.first | default: 'you' }}")),
            (3, Templates[Math.Min(depth, 1)].Select(s => s.Replace('\n', ' '))))
        from text in Gen.Frequency((1, Gen.Constant<string?>(null)), (6, Templates[depth].Select(t => (string?)t)))
        from html in Gen.Frequency((2, Gen.Constant<string?>(null)), (3, Templates[depth].Select(t => (string?)("<html><body>" + t + "</body></html>"))))
        from keys in Gen.SubListOf(DataKeys)
        from count in Gen.Choose(1, 5)
        from data in Gen.ArrayOf(RecipientData([.. keys]), count)
        from hazard in Hazards
        from place in Gen.Choose(0, 3)
        select hazard.Length == 0 ? new Generated(subject, text, html, data) : place switch
        {
            0 => new Generated(subject + hazard.Replace('\n', ' '), text, html, data),
            1 => new Generated(subject, hazard + text, html, data),
            2 => new Generated(subject, text + hazard, html, data),
            _ => new Generated(subject, text, html + hazard, data),
        };

    private static string Body(Generated campaign, int number)
    {
        var body = new StringBuilder("{\"from\":\"News <news@example.com>\",\"subject\":").Append(Json(campaign.Subject));
        if (campaign.Text is not null)
        {
            body.Append(",\"text\":").Append(Json(campaign.Text));
        }

        if (campaign.Html is not null)
        {
            body.Append(",\"html\":").Append(Json(campaign.Html));
        }

        body.Append(",\"recipients\":[");
        for (var i = 0; i < campaign.Data.Length; i++)
        {
            body.Append(i == 0 ? "" : ",");
            var email = Json(Address(number, i));
            body.Append(campaign.Data[i] is { } data ? $"{{\"email\":{email},\"data\":{data}}}" : email);
        }

        return body.Append("]}").ToString();
    }

    private static string Address(int campaign, int index) => $"b{campaign}-{index}@example.org";

    private static string Shown(string value, int max = 300) => value.Length > max ? value[..max] + $"…({value.Length} chars)" : value;

    private static string Describe(Generated campaign) =>
        $"subject: {Shown(campaign.Subject)}{Environment.NewLine}text: {Shown(campaign.Text ?? "(none)")}{Environment.NewLine}"
        + $"html: {Shown(campaign.Html ?? "(none)")}{Environment.NewLine}"
        + string.Join(Environment.NewLine, campaign.Data.Select((d, i) => $"recipients[{i}].data: {Shown(d ?? "(none)")}"));

    private sealed record Posted(int Number, Generated Campaign, string Id, DateTimeOffset At);

    [Fact]
    public async Task GeneratedTemplatesAndData_AreRefusedAt400OrEndWithinAMinuteWithCountsThatAddUp_AndANormalCampaignStillCompletesAfterThem()
    {
        var seed = ulong.TryParse(Environment.GetEnvironmentVariable("BULK_BATTERY_SEED"), CultureInfo.InvariantCulture, out var given)
            ? given : (ulong)Random.Shared.NextInt64();
        var total = int.TryParse(Environment.GetEnvironmentVariable("BULK_BATTERY_CAMPAIGNS"), CultureInfo.InvariantCulture, out var n) ? n : 300;
        output.WriteLine($"seed {seed} (replay with BULK_BATTERY_SEED={seed}), {total} campaigns");
        var campaigns = Gen.Sample(Campaigns, total, new Rnd(seed), size: 30);

        var clock = Stopwatch.StartNew();
        using var frontLogs = new CapturedLogs();
        using var workerLogs = new CapturedLogs();
        await using var smtp = await TestSmtpServer.StartAsync();
        await using var system = await BulkSystem.StartFrontAsync(broker, frontLogs, "--Front:CampaignsPerMinute=0");
        for (var worker = 0; worker < 2; worker++)
        {
            await system.StartWorkerAsync(smtp, services => services.AddSingleton<ILoggerProvider>(workerLogs),
                "--Logging:LogLevel:Bulk=Warning", "--Logging:Console:LogLevel:Default=Error");
        }

        var problems = new Problems();
        var accepted = new List<Posted>();
        var refused = 0;
        var refusedFields = new Dictionary<string, int>();
        var refusals = new Dictionary<string, int>();
        for (var number = 0; number < campaigns.Length; number++)
        {
            var campaign = campaigns[number];
            var at = DateTimeOffset.UtcNow;
            using var response = await system.Http.PostAsync("/campaigns", new StringContent(Body(campaign, number), Encoding.UTF8, "application/json"));
            var answer = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                accepted.Add(new Posted(number, campaign, JsonDocument.Parse(answer).RootElement.GetProperty("id").GetString()!, at));
            }
            else if (response.StatusCode == HttpStatusCode.BadRequest
                && JsonDocument.Parse(answer).RootElement.TryGetProperty("errors", out var errors)
                && errors.EnumerateObject().Select(e => e.Name).ToList() is { Count: > 0 } fields)
            {
                refused++;
                foreach (var field in fields)
                {
                    var name = field.Split('[', '.')[0];
                    refusedFields[name] = refusedFields.GetValueOrDefault(name) + 1;
                    var reason = Kind($"{name}: {errors.GetProperty(field)[0].GetString()}");
                    refusals[reason] = refusals.GetValueOrDefault(reason) + 1;
                }
            }
            else
            {
                problems.Add($"answered {(int)response.StatusCode}", $"campaign #{number}: {Shown(answer, 500)}{Environment.NewLine}{Describe(campaign)}");
            }
        }

        output.WriteLine($"posted {campaigns.Length} in {clock.Elapsed.TotalSeconds:F1} s: {accepted.Count} accepted (202), "
            + $"{refused} refused (400), {campaigns.Length - accepted.Count - refused} other answers");
        output.WriteLine("refusals by field: " + string.Join(", ", refusedFields.OrderByDescending(f => f.Value).Select(f => $"{f.Key} {f.Value}")));
        foreach (var (reason, count) in refusals.OrderByDescending(r => r.Value).Take(15))
        {
            output.WriteLine($"  {count} × {reason}");
        }

        // Every accepted campaign must end (or be held) within a minute of its POST; the ledger's own timestamps say when.
        var finals = new Dictionary<string, CampaignStatus>();
        var waiting = accepted.ToList();
        var mailsTo = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var mails = 0;
        var largest = 0;
        while (waiting.Count > 0)
        {
            foreach (var posted in waiting.ToList())
            {
                var status = await system.StatusAsync(posted.Id);
                if (status.IsFinished || status.Status == CampaignLedger.Statuses.Held)
                {
                    finals[posted.Id] = status;
                    waiting.Remove(posted);
                }
                else if (DateTimeOffset.UtcNow - posted.At > FinalWithin)
                {
                    problems.Add($"not finished nor held {FinalWithin.TotalSeconds} s after its POST",
                        $"campaign #{posted.Number} ({posted.Id}): {status}{Environment.NewLine}{Describe(posted.Campaign)}");
                    waiting.Remove(posted);
                }
            }

            mails += Drain(smtp, mailsTo, ref largest);
            if (waiting.Count > 0)
            {
                await Task.Delay(200);
            }
        }

        mails += Drain(smtp, mailsTo, ref largest);
        var failureReasons = new Dictionary<string, int>();
        var longest = TimeSpan.Zero;
        foreach (var posted in accepted.Where(p => finals.ContainsKey(p.Id)))
        {
            var status = finals[posted.Id];
            var label = $"campaign #{posted.Number} ({posted.Id})";
            var ended = status.CompletedAt ?? status.CancelledAt ?? status.HeldAt;
            var took = ended - posted.At ?? TimeSpan.Zero;
            longest = took > longest ? took : longest;
            if (took > FinalWithin)
            {
                problems.Add($"ended more than {FinalWithin.TotalSeconds} s after its POST", $"{label} took {took.TotalSeconds:F1} s: {status}{Environment.NewLine}{Describe(posted.Campaign)}");
            }

            if (status.Total != posted.Campaign.Data.Length
                || status.Delivered + status.Failed + status.Suppressed + status.Pending != status.Total
                || (status.IsFinished && status.Pending != 0))
            {
                problems.Add("counts do not add up", $"{label} posted with {posted.Campaign.Data.Length} recipients: {status}{Environment.NewLine}{Describe(posted.Campaign)}");
            }

            var delivered = Enumerable.Range(0, posted.Campaign.Data.Length).Sum(i => mailsTo.GetValueOrDefault(Address(posted.Number, i)));
            if (delivered != status.Delivered)
            {
                problems.Add("delivered differs from what the relay received", $"{label} says {status.Delivered} delivered, the relay received {delivered}");
            }

            if (status.Failed > 0)
            {
                var page = (await system.Http.GetFromJsonAsync<FailurePage>($"/campaigns/{posted.Id}/failures", JsonSerializerOptions.Web))!;
                foreach (var failure in page.Failures)
                {
                    if (!failure.Reply.StartsWith("template: ", StringComparison.Ordinal))
                    {
                        problems.Add($"failed with a reason other than 'template: …': {Kind(failure.Reply)}",
                            $"{label} recipients[{failure.Index}] failed with '{Shown(failure.Reply)}'{Environment.NewLine}{Describe(posted.Campaign)}");
                    }

                    var reason = Kind(failure.Reply);
                    failureReasons[reason] = failureReasons.GetValueOrDefault(reason) + 1;
                }

                if (page.Count != status.Failed)
                {
                    problems.Add("failed count differs from the failures listed", $"{label} counts {status.Failed} failed but lists {page.Count}");
                }
            }
        }

        var parked = await broker.MessageCountAsync(system.Topology.DeadQueue);
        if (parked > 0)
        {
            problems.Add("jobs parked in the dead queue", $"{parked} jobs");
        }

        var refusedDelivered = mailsTo.Keys.Count(a => !accepted.Any(p => a.StartsWith($"b{p.Number}-", StringComparison.Ordinal)));
        if (refusedDelivered > 0)
        {
            problems.Add("refused campaigns' recipients received mail", $"{refusedDelivered} addresses");
        }

        output.WriteLine("final states: " + string.Join(", ", finals.Values.GroupBy(s => s.Status).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}")));
        output.WriteLine($"recipients: {finals.Values.Sum(s => s.Total)} in accepted campaigns, {finals.Values.Sum(s => s.Delivered)} delivered, "
            + $"{finals.Values.Sum(s => s.Failed)} failed, {finals.Values.Sum(s => s.Suppressed)} suppressed; the relay received {mails} mails, the largest {largest / 1024} KiB");
        output.WriteLine("failed recipients by reason: " + string.Join("; ", failureReasons.OrderByDescending(f => f.Value).Select(f => $"{f.Key} ×{f.Value}")));
        output.WriteLine($"longest from POST to final state: {longest.TotalSeconds:F1} s; battery done at {clock.Elapsed.TotalSeconds:F1} s");
        Report("Front", frontLogs);
        Report("Worker", workerLogs);

        // The Worker is not left stalled or slowed by what came before.
        var normalPostedAt = clock.Elapsed;
        var normal = await system.PostAsync(SampleCampaigns.Personal(200));
        CampaignStatus? done = null;
        try
        {
            done = await system.WaitForStatusAsync(normal, s => s.IsFinished, TimeSpan.FromSeconds(30));
            output.WriteLine($"a normal campaign of 200 then completed in {(clock.Elapsed - normalPostedAt).TotalSeconds:F1} s; whole test {clock.Elapsed.TotalSeconds:F1} s");
        }
        catch (TimeoutException e)
        {
            problems.Add("a normal campaign posted after the battery did not complete within 30 s", e.Message);
        }

        Assert.True(problems.Count == 0, $"seed {seed}: {problems}");
        Assert.True(accepted.Count > 0 && accepted.Count < campaigns.Length, $"the generator should give both accepted and refused campaigns: {accepted.Count} of {campaigns.Length} accepted");
        Assert.Equal(finals.Values.Sum(s => s.Delivered), mails);
        Assert.Equal((CampaignLedger.Statuses.Completed, 200), (done!.Status, done.Delivered));
    }

    /// <summary>What went wrong, by kind, each kind with its shortest example.</summary>
    private sealed class Problems
    {
        private readonly Dictionary<string, List<string>> byKind = new(StringComparer.Ordinal);

        public int Count => byKind.Values.Sum(v => v.Count);

        public void Add(string kind, string example)
        {
            if (!byKind.TryGetValue(kind, out var examples))
            {
                byKind[kind] = examples = [];
            }

            examples.Add(example);
        }

        public override string ToString() =>
            $"{Count} problems of {byKind.Count} kinds" + string.Concat(byKind.OrderByDescending(k => k.Value.Count).Select(k =>
                $"{Environment.NewLine}{Environment.NewLine}{k.Value.Count} × {k.Key}; the shortest:{Environment.NewLine}{k.Value.MinBy(e => e.Length)}"));
    }

    /// <summary>Counts and forgets what the relay received so far, so that megabyte messages are not all held at once.</summary>
    private static int Drain(TestSmtpServer smtp, Dictionary<string, int> mailsTo, ref int largest)
    {
        var count = 0;
        while (smtp.Mails.TryDequeue(out var mail))
        {
            mailsTo[mail.Recipient] = mailsTo.GetValueOrDefault(mail.Recipient) + 1;
            largest = Math.Max(largest, mail.Raw?.Length ?? 0);
            count++;
        }

        return count;
    }

    /// <summary>A failure's reason without its numbers, so that like reasons are counted together.</summary>
    private static string Kind(string reply)
    {
        var reason = string.Concat(reply.Select(c => char.IsAsciiDigit(c) ? '#' : c));
        return Shown(System.Text.RegularExpressions.Regex.Replace(reason, "#+", "#"), 90);
    }

    private void Report(string host, CapturedLogs logs)
    {
        var failures = logs.FailuresSince(0);
        output.WriteLine($"{host} log: {logs.Entries.Count} entries at Warning or above, {failures.Count} at Error or with an exception");
        foreach (var entry in failures.Take(10))
        {
            output.WriteLine($"  {Shown(entry.ToString(), 600)}");
        }
    }
}
