namespace Bulk.Worker.Rendering;

/// <summary>A stream a rendering writes into and that passes on what it is written, changed; <see cref="Complete"/> ends it.</summary>
/// <remarks>Not ended by <see cref="Stream.Flush"/>: a writer may flush whenever it likes, before the content is whole.</remarks>
internal abstract class WriteOnlyStream : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public abstract override void Write(ReadOnlySpan<byte> buffer);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>Writes what is held back for the end of the content.</summary>
    public abstract void Complete();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
