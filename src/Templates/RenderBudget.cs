using Fluid;

namespace Bulk.Templates;

/// <summary>What one rendering (one recipient's message, from <see cref="LiquidSandbox.NewContext"/> on) may still spend:
/// its time, and the characters its filters and captures may build.</summary>
/// <remarks>
/// Checking a value once it is built is too late: a <c>replace</c> of a 1 MB value by 1,000 characters had taken
/// gigabytes before its result could be measured. So every filter states what it will build (<see cref="FilterBounds"/>)
/// and pays for it here before it runs; a capture pays as it writes. What the template writes to the message itself is
/// bounded by the output cap instead, and literal text is the parsed template's, not the rendering's.
/// </remarks>
internal sealed class RenderBudget(TimeProvider time, TemplateLimits limits)
{
    private const string Key = "bulk.budget";

    /// <summary>What a list item costs against the budget, in characters: its reference and its boxed value.</summary>
    public const int ItemChars = 16;

    private readonly long started = time.GetTimestamp();
    private long allocated;

    public TemplateLimits Limits => limits;

    /// <summary>Characters (and list items at <see cref="ItemChars"/>) built so far.</summary>
    public long Allocated => allocated;

    public void AttachTo(TemplateContext context) => context.AmbientValues[Key] = this;

    public static RenderBudget? Of(TemplateContext context) =>
        context.AmbientValues.TryGetValue(Key, out var value) ? value as RenderBudget : null;

    public void CheckTime()
    {
        if (time.GetElapsedTime(started).TotalMilliseconds > limits.MaxRenderMilliseconds)
        {
            throw new TemplateTimeoutException($"rendering took longer than {limits.MaxRenderMilliseconds} ms (Templates__MaxRenderMilliseconds)");
        }
    }

    /// <summary>Pays for a value of up to <paramref name="chars"/> characters and <paramref name="items"/> list items, before it is built.</summary>
    /// <exception cref="TemplateRenderException">It would be larger than one value may be, or the rendering has built too much.</exception>
    public void Build(long chars, long items)
    {
        CheckTime();
        if (chars > limits.MaxOutputChars)
        {
            throw new TemplateRenderException($"a value grew past {limits.MaxOutputChars} characters (Templates__MaxOutputChars)");
        }

        if (items > limits.MaxItems)
        {
            throw new TemplateRenderException($"a list grew past {limits.MaxItems} items (Templates__MaxItems)");
        }

        Spend(chars + (items * ItemChars));
    }

    /// <summary>Pays for <paramref name="chars"/> more characters of a value being written (a capture).</summary>
    public void Spend(long chars)
    {
        allocated += chars;
        if (allocated > limits.MaxAllocatedChars)
        {
            throw new TemplateRenderException(
                $"the rendering built more than {limits.MaxAllocatedChars} characters in all (Templates__MaxAllocatedChars): a loop builds values over and over");
        }
    }
}
