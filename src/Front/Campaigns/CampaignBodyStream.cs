using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;

namespace Bulk.Front.Campaigns;

/// <summary>A POST's body grew past what the intake memory has left beside the other POSTs (<see cref="IntakeMemoryBudget"/>).</summary>
public sealed class IntakeBusyException() : Exception("The intake memory budget is held by other campaigns.");

/// <summary>
/// The request body as the serializer reads it, hashed and watched on the way through, so that neither the
/// idempotency hash nor the early refusals need a copy of the body in memory; the POST's intake memory reservation
/// grows with the bytes as they arrive, before the serializer builds anything of them.
/// </summary>
/// <remarks>
/// It reads Kestrel's pipe itself rather than the request stream: a read cancelled by the body's deadline
/// (<see cref="PipeReader.CancelPendingRead"/>) must be ended with <see cref="PipeReader.AdvanceTo(SequencePosition)"/>, which the
/// request stream does not do, and Kestrel logs an error for every slow client whose body reader it finds still reading.
/// </remarks>
internal sealed class CampaignBodyStream(PipeReader body, CampaignBodyGuard guard, IntakeReservation? reservation = null) : Stream
{
    private readonly IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long received;

    /// <summary>The SHA-256 of every byte read so far, in lower-case hex: the same as hashing the whole body at once.</summary>
    public string Hash() => Convert.ToHexStringLower(hash.GetCurrentHash());

    /// <exception cref="OperationCanceledException">The read was cancelled: the body's deadline passed.</exception>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var result = await body.ReadAsync(cancellationToken);
        var data = result.Buffer;
        if (result.IsCanceled)
        {
            body.AdvanceTo(data.Start);
            throw new OperationCanceledException("The body's deadline passed.");
        }

        var read = (int)Math.Min(buffer.Length, data.Length);
        data.Slice(0, read).CopyTo(buffer.Span);
        body.AdvanceTo(data.GetPosition(read));
        Observe(buffer.Span[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Kestrel allows no synchronous reads, and nothing here needs one.</summary>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <exception cref="IntakeBusyException">The bytes do not fit in the intake memory beside the other POSTs'.</exception>
    private void Observe(ReadOnlySpan<byte> bytes)
    {
        received += bytes.Length;
        if (reservation is not null && !reservation.TryCover(received))
        {
            throw new IntakeBusyException();
        }

        hash.AppendData(bytes);
        guard.Observe(bytes);
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
