namespace Bulk.Templates;

/// <summary>Passes on what a template writes, refusing past a cap or the time budget.</summary>
/// <param name="what">What is written, for the error: "the output", "the subject", "a value".</param>
/// <param name="setting">The setting that sets <paramref name="maxChars"/>, for the error.</param>
/// <param name="spends">Whether what is written is a value the rendering builds (a capture) and is paid from <paramref name="budget"/>;
/// the message itself is not, it is bounded by its own cap.</param>
internal sealed class CappedWriter(TextWriter output, int maxChars, string what, string setting, RenderBudget? budget, bool spends = false) : TextWriter
{
    private long written;

    public override System.Text.Encoding Encoding => output.Encoding;

    public override void Write(char value)
    {
        Room(1);
        output.Write(value);
    }

    public override void Write(char[] buffer, int index, int count)
    {
        Room(count);
        output.Write(buffer, index, count);
    }

    public override void Write(string? value)
    {
        Room(value?.Length ?? 0);
        output.Write(value);
    }

    public override void Write(ReadOnlySpan<char> buffer)
    {
        Room(buffer.Length);
        output.Write(buffer);
    }

    public override void Flush() => output.Flush();

    // Rendering is synchronous (see RenderTo): TextWriter's own async writes would hop to the thread pool.
    public override Task WriteAsync(char value)
    {
        Write(value);
        return Task.CompletedTask;
    }

    public override Task WriteAsync(string? value)
    {
        Write(value);
        return Task.CompletedTask;
    }

    public override Task WriteAsync(char[] buffer, int index, int count)
    {
        Write(buffer, index, count);
        return Task.CompletedTask;
    }

    public override Task WriteAsync(ReadOnlyMemory<char> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return Task.CompletedTask;
    }

    public override Task FlushAsync()
    {
        Flush();
        return Task.CompletedTask;
    }

    private void Room(int count)
    {
        budget?.CheckTime();
        if (written + count > maxChars)
        {
            throw new TemplateRenderException($"{what} grew past {maxChars} characters ({setting})");
        }

        written += count;
        if (spends)
        {
            budget?.Spend(count);
        }
    }
}

