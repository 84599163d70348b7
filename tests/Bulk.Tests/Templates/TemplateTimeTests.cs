using Bulk.Templates;
using Bulk.Tests.Infrastructure;
using Fluid;

namespace Bulk.Tests.Templates;

/// <summary>A rendering's time budget holds in loops that write, assign and filter nothing.</summary>
public sealed class TemplateTimeTests
{
    [Fact]
    public void NestedLoopsThatDoNothing_RunOutOfTime_RatherThanRunningToTheStepLimit()
    {
        // Every reading of this clock is two seconds after the one before: any look at it is past the budget.
        var sandbox = new LiquidSandbox(new TemplateLimits { MaxSteps = 100_000_000 }, new StallingClock(int.MaxValue));
        Assert.True(sandbox.TryParse("{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}", out var template, out var error), error);
        var context = sandbox.NewContext(null, "a@example.org", "https://example.org/u");

        var refusal = Assert.Throws<TemplateTimeoutException>(() => sandbox.Render(template, context, NullEncoder.Default));

        Assert.Equal("rendering took longer than 1000 ms (Templates__MaxRenderMilliseconds)", refusal.Message);
    }
}
