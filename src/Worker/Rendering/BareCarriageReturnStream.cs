namespace Bulk.Worker.Rendering;

/// <summary>Passes on what a template renders, with every CR that is not followed by a LF turned into CRLF.</summary>
/// <remarks>
/// MailKit turns a bare LF into CRLF and dot-stuffs the line after it, but passes a bare CR on as it is: a template or a
/// recipient's value holding <c>X\r.\rY</c> reached the relay byte for byte, and a relay that takes <c>&lt;CR&gt;.&lt;CR&gt;</c>
/// for the end of the data would read what follows as a second message with a MAIL FROM of the data's choosing (SMTP
/// smuggling). Made a line end here, the dot after it is stuffed like any other. Most parts hold no CR at all: they are
/// passed on in one write, after one vectorised search.
/// </remarks>
internal sealed class BareCarriageReturnStream(Stream inner) : WriteOnlyStream
{
    private static readonly byte[] Lf = "\n"u8.ToArray();

    /// <summary>The last byte written was a CR: whether it was bare depends on the next write.</summary>
    private bool pendingCr;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }

        if (pendingCr && buffer[0] != '\n')
        {
            inner.Write(Lf);
        }

        while (true)
        {
            var cr = buffer.IndexOf((byte)'\r');
            if (cr < 0 || cr == buffer.Length - 1)
            {
                inner.Write(buffer);
                pendingCr = cr >= 0;
                return;
            }

            inner.Write(buffer[..(cr + 1)]);
            if (buffer[cr + 1] != '\n')
            {
                inner.Write(Lf);
            }

            buffer = buffer[(cr + 1)..];
        }
    }

    /// <summary>Ends the content: a CR it ends with becomes CRLF too.</summary>
    public override void Complete()
    {
        if (pendingCr)
        {
            inner.Write(Lf);
            pendingCr = false;
        }
    }

    public override void Flush() => inner.Flush();
}
