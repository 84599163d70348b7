using Bulk.Templates;
using FsCheck;
using FsCheck.Fluent;

namespace Bulk.Tests.Templates;

/// <summary>Generated chains of filters, alone, in loops and in captures, over values as large as one may be: whatever
/// each renders to or is refused for, it never costs more than a few times the rendering's limits.</summary>
public sealed class TemplateAllocationProperties
{
    private static readonly string[] Heads = ["s", "lt", "nl", "u", "csv", "a", "'ab'", "'{0,9}|{1}'"];

    private static readonly string[] Arguments =
    [
        "s", "'x'", "''", "','", "'" + new string('y', 1000) + "'", "a", "lt", "u", "'N9'", "'%Y %d'", "3", "1000000",
    ];

    private static readonly string[] Filters =
    [
        "append", "prepend", "replace", "replace_first", "replace_last", "join", "concat", "split", "escape", "escape_once",
        "url_encode", "newline_to_br", "json", "upcase", "capitalize", "strip", "truncate", "truncatewords", "slice", "map",
        "reverse", "sort", "uniq", "first", "size", "default", "remove", "format_string", "format_number", "date",
    ];

    private static readonly Gen<string> FilterCall =
        from name in Gen.Elements(Filters)
        from count in Gen.Choose(0, 2)
        from arguments in Gen.ArrayOf(Gen.Elements(Arguments), count)
        select count == 0 ? name : $"{name}: {string.Join(", ", arguments)}";

    private static readonly Gen<string> Chain =
        from head in Gen.Elements(Heads)
        from count in Gen.Choose(1, 5)
        from filters in Gen.ArrayOf(FilterCall, count)
        select head + string.Concat(filters.Select(f => " | " + f));

    private static readonly Gen<string> Template = Gen.OneOf(
        from chain in Chain
        select $"{{% assign v = {chain} %}}{{{{ v | size }}}}",
        from head in Gen.Elements(Heads)
        from times in Gen.Elements(1, 10, 100, 1000)
        from filter in FilterCall
        select $"{{% assign v = {head} %}}{{% for i in (1..{times}) %}}{{% assign v = v | {filter} %}}{{% endfor %}}",
        from chain in Chain
        from times in Gen.Elements(1, 10, 100, 1000)
        select $"{{% capture c %}}{{% for i in (1..{times}) %}}{{{{ {chain} }}}}{{% endfor %}}{{% endcapture %}}{{{{ c | size }}}}");

    [Fact]
    public void NoGeneratedChainOfFilters_CostsMoreThanAFewTimesTheLimits()
    {
        var sandbox = new LiquidSandbox(TemplateAllocationTests.Small);
        var property = Prop.ForAll(Template.ToArbitrary(), source =>
        {
            if (!sandbox.TryParse("{% assign a = csv | split: ',' %}" + source, out var template, out _))
            {
                return;
            }

            var (allocated, refusal) = TemplateAllocationTests.Render(sandbox, template);

            Assert.True(allocated <= TemplateAllocationTests.AllowedBytes,
                $"{allocated:N0} bytes allocated, more than {TemplateAllocationTests.AllowedBytes:N0}: {source} ({refusal?.Message ?? "rendered"})");
        });

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300).WithQuietOnSuccess(true), property);
    }
}
