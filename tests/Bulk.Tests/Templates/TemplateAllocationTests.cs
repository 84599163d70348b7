using System.Text.Json;
using Bulk.Templates;
using Fluid;

namespace Bulk.Tests.Templates;

/// <summary>No filter, capture or loop builds more than a rendering's limits allow, even for a moment: a value too
/// large is refused before it is built, and what a rendering builds in all is bounded by <c>Templates__MaxAllocatedChars</c>.</summary>
/// <remarks>Small limits stand in for the defaults (a 64 K-character value, 256 K characters in all), so a failure
/// costs this process megabytes rather than gigabytes; the bound holds at any scale (see <see cref="TemplateAllocationProperties"/>).</remarks>
public sealed class TemplateAllocationTests
{
    internal static readonly TemplateLimits Small = new()
    {
        MaxOutputChars = 64 * 1024,
        MaxAllocatedChars = 256 * 1024,
        // Time is not what these tests are about: a slow CI machine must not turn a refusal into a timeout.
        MaxRenderMilliseconds = 600_000,
    };

    /// <summary>What one rendering may cost this thread under <see cref="Small"/>: a few times the characters it may
    /// build (two bytes each), and a megabyte for Fluid's own work.</summary>
    internal static readonly long AllowedBytes = (4L * 2 * Small.MaxAllocatedChars) + (1024 * 1024);

    /// <summary>A recipient whose <c>s</c> is as large as one value may be, and whose <c>lt</c> is all characters an escape grows.</summary>
    internal static readonly Dictionary<string, JsonElement> Data = new()
    {
        ["s"] = JsonSerializer.SerializeToElement(new string('x', Small.MaxOutputChars)),
        ["lt"] = JsonSerializer.SerializeToElement(new string('<', Small.MaxOutputChars / 8)),
        ["nl"] = JsonSerializer.SerializeToElement(new string('\n', Small.MaxOutputChars / 8)),
        ["u"] = JsonSerializer.SerializeToElement(new string('é', Small.MaxOutputChars / 8)),
        ["csv"] = JsonSerializer.SerializeToElement(string.Join(',', Enumerable.Repeat("ab", 200))),
    };

    public static TheoryData<string, string> Templates => new()
    {
        { "replace", "{% assign t = s | replace: 'x', '" + new string('y', 1000) + "' %}" },
        { "replace of nothing", "{{ s | replace: '', 'yy' | size }}" },
        { "replace_first in a loop", "{% for i in (1..1000) %}{% assign t = s | replace_first: 'x', 'yy' %}{% endfor %}" },
        { "prepend in a loop", "{% for i in (1..1000) %}{% assign t = s | prepend: 'y' %}{% endfor %}" },
        { "join of a doubled list", "{% assign a = s | split: ',' %}{% for i in (1..8) %}{% assign a = a | concat: a %}{% endfor %}{% assign t = a | join: '' %}" },
        { "split into characters", "{% for i in (1..100) %}{% assign a = s | split: '' %}{% endfor %}" },
        { "capture in a loop", "{% capture c %}{% for i in (1..1000) %}{{ s }}{% endfor %}{% endcapture %}" },
        { "upcase in a loop", "{% for i in (1..1000) %}{% assign t = s | upcase %}{% endfor %}" },
        { "escape", "{% for i in (1..1000) %}{% assign t = lt | escape %}{% endfor %}" },
        { "newline_to_br", "{% for i in (1..1000) %}{% assign t = nl | newline_to_br %}{% endfor %}" },
        { "url_encode", "{% for i in (1..1000) %}{% assign t = u | url_encode %}{% endfor %}" },
        { "json of a doubled list", "{% assign a = s | split: ',' %}{% for i in (1..8) %}{% assign a = a | concat: a %}{% endfor %}{% assign t = a | json %}" },
        { "format_string padding", "{% assign t = '{0,60000000}' | format_string: 'x' %}" },
        { "format_number precision", "{% assign t = 1 | format_number: 'N60000000' %}" },
    };

    [Theory]
    [MemberData(nameof(Templates))]
    public void AGrowingTemplate_IsRefusedBeforeItBuildsMoreThanItsLimits(string name, string source)
    {
        var sandbox = new LiquidSandbox(Small);
        Assert.True(sandbox.TryParse(source, out var template, out var error), error);

        var (allocated, refusal) = Render(sandbox, template);

        Assert.True(refusal is not null, $"{name}: rendered");
        Assert.True(allocated <= AllowedBytes, $"{name}: {allocated:N0} bytes allocated, more than {AllowedBytes:N0} ({refusal!.Message})");
        Assert.Matches("grew past|built more than", refusal.Message);
    }

    [Fact]
    public void EveryFilterFluidOffers_HasABoundOnWhatItBuilds()
    {
        var fluid = new TemplateOptions().Filters.Select(f => f.Key).ToHashSet(StringComparer.Ordinal);
        var sandbox = new LiquidSandbox(new TemplateLimits());

        var missing = fluid.Where(name => !sandbox.TryParse($"{{{{ 'x' | {name} }}}}", out _, out var error) && error.StartsWith("Unknown filter", StringComparison.Ordinal)).ToList();

        Assert.True(missing.Count == 0, "without a bound: " + string.Join(", ", missing));
    }

    [Fact]
    public void TemplatesWithinTheLimits_RenderAsBefore()
    {
        var sandbox = new LiquidSandbox(new TemplateLimits());
        const string source = "{% capture c %}{{ s | size }}{% endcapture %}{{ csv | split: ',' | join: ';' | replace: 'ab', 'xyz' | size }} {{ c }} "
            + "{{ 'a<b' | escape }} {{ '{0,5}|' | format_string: 7 }} {{ 1234.5 | format_number: 'N2' }} {{ 'é' | url_encode }} {{ csv | split: ',' | size }}";
        Assert.True(sandbox.TryParse(source, out var template, out var error), error);

        var context = sandbox.NewContext(Data, "a@example.org", "https://example.org/u");

        Assert.Equal("799 65536 a&lt;b     7| 1,234.50 %C3%A9 200", sandbox.Render(template, context, NullEncoder.Default));
    }

    /// <summary>Renders for the recipient of <see cref="Data"/> and tells how many bytes this thread allocated doing it.</summary>
    internal static (long Allocated, TemplateRenderException? Refusal) Render(LiquidSandbox sandbox, IFluidTemplate template)
    {
        var context = sandbox.NewContext(Data, "a@example.org", "https://example.org/u");
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            sandbox.RenderTo(template, context, NullEncoder.Default, Stream.Null);
            return (GC.GetAllocatedBytesForCurrentThread() - before, null);
        }
        catch (TemplateRenderException e)
        {
            return (GC.GetAllocatedBytesForCurrentThread() - before, e);
        }
    }
}
