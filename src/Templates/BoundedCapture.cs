using System.Text.Encodings.Web;
using Fluid;
using Fluid.Ast;
using Fluid.Values;

namespace Bulk.Templates;

/// <summary><c>{% capture %}</c> that stops writing at one value's limit and pays the rendering's budget as it writes.</summary>
/// <remarks>Fluid's capture writes its whole block to a buffer and only then hands over the value: a loop writing a
/// large value a few thousand times within the step limit had built gigabytes before anything could measure it.</remarks>
internal sealed class BoundedCapture(string identifier, IReadOnlyList<Statement> statements) : Statement
{
    public override async ValueTask<Completion> WriteToAsync(TextWriter writer, TextEncoder encoder, TemplateContext context)
    {
        var budget = RenderBudget.Of(context);
        var limit = budget?.Limits.MaxOutputChars ?? int.MaxValue;
        using var buffer = new StringWriter();
        using var capped = new CappedWriter(buffer, limit, "a value", "Templates__MaxOutputChars", budget, spends: true);
        var completion = Completion.Normal;
        foreach (var statement in statements)
        {
            completion = await statement.WriteToAsync(capped, encoder, context);
            if (completion != Completion.Normal)
            {
                break;
            }
        }

        FluidValue value = new StringValue(buffer.ToString(), encode: false);
        if (context.Captured is { } captured)
        {
            value = await captured(identifier, value, context);
        }

        context.SetValue(identifier, value);
        return completion;
    }

}
