using System.Text.Encodings.Web;
using System.Text.Json;
using Fluid;
using Fluid.Ast;
using Fluid.Values;

namespace Bulk.Templates;

/// <summary>A template could not be rendered for one recipient: what went wrong, in words a campaign's author can act on.</summary>
public class TemplateRenderException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A rendering ran out of its time budget (<c>Templates__MaxRenderMilliseconds</c>).</summary>
/// <remarks>Unlike the other limits this one depends on the machine as well as the template: the first rendering in a
/// fresh process also JIT-compiles Fluid, and a busy machine may deschedule it. <see cref="LiquidSandbox.OnceMoreIfOutOfTime"/>
/// gives such a rendering a second budget.</remarks>
public sealed class TemplateTimeoutException(string message) : TemplateRenderException(message);

/// <summary>Parses and renders campaigns' Liquid templates so that every rendering ends, within limits, or fails with a reason.</summary>
/// <remarks>
/// A campaign's template is written by whoever may post one, so it is treated as untrusted code: tags that read files
/// (<c>include</c>, <c>render</c>) do not exist here, a filter must be one Fluid knows whose growth is bounded
/// (<see cref="FilterBounds"/>), and a rendering is bounded in statements, nesting, characters produced, characters and
/// items built on the way (paid for before they are built, <see cref="RenderBudget"/>), and time. The Front parses and renders
/// with this same class, so what a Worker would refuse is refused at submission.
/// </remarks>
public sealed class LiquidSandbox
{
    /// <summary>Tags other Liquid engines know that need files or layouts; named in the error rather than "unknown tag".</summary>
    private static readonly string[] FileTags = ["include", "render", "layout", "section", "sections", "block", "extends", "import"];

    private readonly FluidParser parser = new();
    private readonly TemplateOptions options;
    private readonly TemplateLimits limits;
    private readonly TimeProvider time;

    /// <param name="time">The clock of the time budget; the system's unless a test stands in for it.</param>
    public LiquidSandbox(TemplateLimits limits, TimeProvider? time = null)
    {
        this.limits = limits;
        this.time = time ?? TimeProvider.System;
        parser.RegisteredTags.Remove("include");
        parser.RegisteredTags.Remove("render");
        options = new TemplateOptions
        {
            MaxSteps = limits.MaxSteps,
            MaxRecursion = limits.MaxRecursion,
            StrictFilters = true,
        };

        // Every filter states the most it will build, and that is paid for before it runs: no chain of filters can build
        // a value larger than one rendering may write, nor a loop of them more than a rendering may build in all. A
        // filter whose growth is not known is not offered.
        foreach (var (name, filter) in options.Filters.ToList())
        {
            if (FilterBounds.Of(name) is not { } bound)
            {
                options.Filters.Remove(name);
                continue;
            }

            options.Filters.AddFilter(name, (input, arguments, context) =>
            {
                if (RenderBudget.Of(context) is { } budget)
                {
                    var size = bound(input, arguments, limits.MaxOutputChars);
                    budget.Build(size.Chars, size.Items);
                }

                return Checked(filter(input, arguments, context), context);
            });
        }

        options.Assigned = (_, value, context) => ValueTask.FromResult(Check(value, context));
        options.Captured = (_, value, context) => ValueTask.FromResult(Check(value, context));
    }

    public TemplateLimits Limits => limits;

    /// <summary>Parses <paramref name="source"/>; false with a reason when it can never render here.</summary>
    public bool TryParse(string source, out IFluidTemplate template, out string error)
    {
        template = null!;
        if (!parser.TryParse(source, out var parsed, out var parseError))
        {
            error = FileTagIn(source) is { } tag
                ? $"The '{tag}' tag is not supported: a campaign's template is self-contained, there are no files to include."
                : $"The template does not parse: {parseError}";
            return false;
        }

        var check = new FilterCheck(options.Filters);
        check.VisitTemplate(parsed);
        if (check.Unknown is { } unknown)
        {
            error = $"Unknown filter '{unknown}'.";
            return false;
        }

        template = new Bounds(limits.MaxItems).VisitTemplate(parsed);
        error = "";
        return true;
    }

    /// <summary>The values a template sees for one recipient: its data, its address and its unsubscribe link.</summary>
    public TemplateContext NewContext(IReadOnlyDictionary<string, JsonElement>? data, string email, string unsubscribeUrl)
    {
        var context = new TemplateContext(options);
        if (data is not null)
        {
            foreach (var (key, value) in data)
            {
                context.SetValue(key, ToFluid(value));
            }
        }

        context.SetValue("email", new StringValue(email));
        context.SetValue("unsubscribe_url", new StringValue(unsubscribeUrl));
        new RenderBudget(time, limits).AttachTo(context);
        return context;
    }

    /// <summary>Runs <paramref name="render"/> (one message's renderings, from <see cref="NewContext"/> on), and once more
    /// with a fresh time budget when the first runs out of time.</summary>
    /// <remarks>A template that is too slow fails again, having cost twice its budget; a rendering that was slow because
    /// the process was cold or the machine busy does not fail its recipient for good.</remarks>
    public static T OnceMoreIfOutOfTime<T>(Func<T> render)
    {
        try
        {
            return render();
        }
        catch (TemplateTimeoutException)
        {
            return render();
        }
    }

    /// <summary>Renders under every limit; anything that goes wrong is a <see cref="TemplateRenderException"/>.</summary>
    /// <remarks>The time budget runs from <see cref="NewContext"/>, so all the templates of one message share it.</remarks>
    public string Render(IFluidTemplate template, TemplateContext context, TextEncoder encoder) =>
        Render(template, context, encoder, limits.MaxOutputChars, "the output", "Templates__MaxOutputChars");

    /// <summary>RFC 5322's limit on a header line: a subject template, or what it renders, is at most this long.</summary>
    public const int MaxLineChars = 998;

    /// <summary>Renders a header line such as the subject: at most <see cref="MaxLineChars"/> characters, whatever the output limit.</summary>
    /// <param name="name">What the line is, for the error: "the subject".</param>
    public string RenderLine(IFluidTemplate template, TemplateContext context, string name) =>
        Render(template, context, NullEncoder.Default, Math.Min(MaxLineChars, limits.MaxOutputChars), name, "a header line's limit");

    private string Render(IFluidTemplate template, TemplateContext context, TextEncoder encoder, int maxChars, string what, string setting)
    {
        using var output = new StringWriter();
        RenderTo(template, context, encoder, output, maxChars, what, setting);
        return output.ToString();
    }

    /// <summary>Renders under every limit as UTF-8 into <paramref name="utf8"/>, without the output ever being one string.</summary>
    /// <remarks>A large template rendered per recipient as a string was a large-object-heap allocation per mail (twice
    /// its size, then its UTF-8 bytes again), which the collector let pile up to gigabytes.</remarks>
    public void RenderTo(IFluidTemplate template, TemplateContext context, TextEncoder encoder, Stream utf8)
    {
        using var output = new StreamWriter(utf8, Utf8, bufferSize: 4096, leaveOpen: true);
        RenderTo(template, context, encoder, output, limits.MaxOutputChars, "the output", "Templates__MaxOutputChars");
    }

    private static readonly System.Text.UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static void RenderTo(IFluidTemplate template, TemplateContext context, TextEncoder encoder, TextWriter output, int maxChars, string what, string setting)
    {
        using var writer = new CappedWriter(output, maxChars, what, setting, RenderBudget.Of(context));
        try
        {
            // Every tag and filter here completes synchronously; the await is only Fluid's shape.
            var rendering = template.RenderAsync(writer, encoder, context);
            if (!rendering.IsCompletedSuccessfully)
            {
                rendering.AsTask().GetAwaiter().GetResult();
            }

            writer.Flush();
        }
        catch (TemplateRenderException)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TemplateRenderException(Describe(e), e);
        }
        catch (OutOfMemoryException e) when (e.Message.Contains("String length exceeded", StringComparison.Ordinal))
        {
            // A filter asked for a string longer than .NET allows (a replace of a large value by itself, say): the
            // template's doing, not the process running out of memory, which still goes up.
            throw new TemplateRenderException($"{what} would be longer than any string can be ({setting})", e);
        }
    }

    private static string Describe(Exception e) => e switch
    {
        DivideByZeroException => "division by zero",
        // Fluid 2.41 reports too many steps with its recursion message, so the two cannot be told apart.
        InvalidOperationException when e.Message.Contains("maximum number of statements", StringComparison.Ordinal)
            || e.Message.Contains("maximum level of recursion", StringComparison.Ordinal) =>
            "too many steps, or nested too deeply (Templates__MaxSteps, Templates__MaxRecursion): a loop runs too long",
        _ => e.Message,
    };

    private async ValueTask<FluidValue> Checked(ValueTask<FluidValue> result, TemplateContext context) => Check(await result, context);

    private FluidValue Check(FluidValue value, TemplateContext context)
    {
        RenderBudget.Of(context)?.CheckTime();
        switch (value)
        {
            case StringValue s when s.ToStringValue().Length > limits.MaxOutputChars:
                throw new TemplateRenderException($"a value grew past {limits.MaxOutputChars} characters (Templates__MaxOutputChars)");
            case ArrayValue a when a.Values.Count > limits.MaxItems:
                throw new TemplateRenderException($"a list grew past {limits.MaxItems} items (Templates__MaxItems)");
            default:
                return value;
        }
    }

    private static string? FileTagIn(string source)
    {
        foreach (var tag in FileTags)
        {
            if (System.Text.RegularExpressions.Regex.IsMatch(source, $@"{{%-?\s*{tag}\b"))
            {
                return tag;
            }
        }

        return null;
    }

    /// <summary>A recipient's value as the template sees it; a number Liquid cannot hold (past decimal's range) stays its JSON text.</summary>
    private FluidValue ToFluid(JsonElement value)
    {
        try
        {
            return FluidValue.Create(ToPlain(value), options);
        }
        catch (OverflowException)
        {
            return new StringValue(value.GetRawText());
        }
    }

    // Fluid reads plain .NET values (dictionaries, lists, strings, numbers) natively.
    private static object? ToPlain(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.TryGetDecimal(out var d) ? d : value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Object => value.EnumerateObject().ToDictionary(p => p.Name, p => ToPlain(p.Value)),
        JsonValueKind.Array => value.EnumerateArray().Select(ToPlain).ToList(),
        _ => null,
    };

    /// <summary>Finds the first filter the template names that does not exist.</summary>
    private sealed class FilterCheck(FilterCollection filters) : AstVisitor
    {
        public string? Unknown { get; private set; }

        protected override Expression VisitFilterExpression(FilterExpression filterExpression)
        {
            if (Unknown is null && !filters.TryGetValue(filterExpression.Name, out _))
            {
                Unknown = filterExpression.Name;
            }

            return base.VisitFilterExpression(filterExpression);
        }
    }

    /// <summary>Puts bounded ranges and captures in place of Fluid's.</summary>
    /// <remarks>Fluid builds a range's whole array before a loop counts a step: <c>(1..1000000000)</c> must be refused
    /// first. A capture is bounded as it writes (<see cref="BoundedCapture"/>).</remarks>
    private sealed class Bounds(int maxItems) : AstRewriter
    {
        protected override Expression VisitRangeExpression(RangeExpression rangeExpression) =>
            new BoundedRange(Visit(rangeExpression.From), Visit(rangeExpression.To), maxItems);

        protected override Statement VisitCaptureStatement(CaptureStatement captureStatement) =>
            new BoundedCapture(captureStatement.Identifier, [.. captureStatement.Statements.Select(Visit)]);

        // A loop that writes, assigns and filters nothing met no check of the time budget: nested empty loops ran to
        // Templates__MaxSteps, seconds past the budget. Each iteration now looks at the clock first.
        protected override Statement VisitForStatement(ForStatement forStatement)
        {
            var loop = (ForStatement)base.VisitForStatement(forStatement);
            return new ForStatement([TimeCheck.Instance, .. loop.Statements], loop.Identifier, loop.Source, loop.Limit, loop.Offset, loop.Reversed, loop.Else);
        }
    }

    private sealed class TimeCheck : Statement
    {
        public static readonly TimeCheck Instance = new();

        public override ValueTask<Completion> WriteToAsync(TextWriter writer, TextEncoder encoder, TemplateContext context)
        {
            RenderBudget.Of(context)?.CheckTime();
            return new ValueTask<Completion>(Completion.Normal);
        }
    }

    private sealed class BoundedRange(Expression from, Expression to, int maxItems) : Expression
    {
        public override async ValueTask<FluidValue> EvaluateAsync(TemplateContext context)
        {
            var start = (await from.EvaluateAsync(context)).ToNumberValue();
            var end = (await to.EvaluateAsync(context)).ToNumberValue();
            var count = end - start + 1;
            if (count > maxItems)
            {
                throw new TemplateRenderException($"a range of {count} items is more than {maxItems} (Templates__MaxItems)");
            }

            var first = (int)start;
            var items = new FluidValue[(int)Math.Max(0, count)];
            for (var i = 0; i < items.Length; i++)
            {
                items[i] = NumberValue.Create(first + i);
            }

            return new ArrayValue(items);
        }
    }
}
