using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bulk.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Bulk.Broker.Streams;

/// <summary>Writes to one of Bulk's streams, and tails it into this process's fold of it.</summary>
/// <remarks>
/// The tail starts at the first entry the stream still holds, so a restarted process rebuilds its state (the startup
/// replay), and after a broker outage it resumes from the offset after the last entry it applied. Writes wait for the
/// broker's confirm. A marker written by the process itself tells it when its tail has read everything written before.
/// </remarks>
public abstract class EventStream<TEvent>(BrokerConnections connections, HistoryOptions history, int maxMessageBytes, ILogger logger)
    : BackgroundService, StreamMetrics.ILagging
    where TEvent : class
{
    /// <summary>How long a write waits for the broker's confirm before it counts as failed.</summary>
    public static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(10);

    // The tail's credit, and how many entries one ack returns: a quarter, so the broker always has most of it to send.
    private const ushort TailPrefetch = 2000;
    private const int TailAckEvery = TailPrefetch / 4;

    /// <summary>How long a stopping process waits for its tail to read what was written before the stop.</summary>
    private static readonly TimeSpan StopCatchUp = TimeSpan.FromSeconds(5);

    /// <summary>How often the fold's lag is measured: a marker written and read back (see <see cref="ProbeLagAsync"/>).</summary>
    private static readonly TimeSpan LagProbeInterval = TimeSpan.FromSeconds(15);

    // Appends take turns on the one write channel, which a failed append replaces.
    private readonly MarkerWaiters markers = new();
    private readonly SemaphoreSlim writeChannelLock = new(1, 1);
    private IChannel? writeChannel;
    private readonly TaskCompletionSource startupReplayed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long nextOffset = -1;
    private long bytesRead;

    // The tail applies an entry and moves its offset under this lock, so a snapshot sees the two agree.
    private readonly Lock foldLock = new();
    private SnapshotStore? snapshots;
    private long snapshotOffset = -1;
    private long gapCheckFrom = -1;

    // The offset after the last entry that was not a marker: markers alone (the lag probe's) call for no new snapshot.
    private long foldedOffset = -1;

    private readonly SnapshotSchedule schedule = new(history);

    // The entries folded before the startup replay was done (markers not counted, the snapshot's not included).
    private long startupEntries;

    // The tail's loop, which a snapshot on stop waits for; and the host's time to stop, which bounds that snapshot.
    private Task tailing = Task.CompletedTask;
    private CancellationToken stopDeadline;

    // The lag probe: when the unanswered marker was written (a Stopwatch timestamp, 0 when none), and the last round trip.
    private long probeSince;
    private double lastLagSeconds = double.NaN;

    /// <summary>The stream's name on the broker.</summary>
    protected abstract string StreamName { get; }

    protected abstract IDictionary<string, object?> StreamArguments { get; }

    protected abstract JsonTypeInfo<TEvent> TypeInfo { get; }

    /// <summary>Folds one entry into this process's state.</summary>
    protected abstract void Apply(TEvent e);

    /// <summary>A marker entry: written by this process to learn when its tail has read everything written before it.</summary>
    protected abstract TEvent NewMarker(string id);

    /// <summary>The marker's id when <paramref name="e"/> is a marker (which the fold never sees), else null.</summary>
    protected abstract string? MarkerIdOf(TEvent e);

    /// <summary>Writes the whole fold, for a snapshot.</summary>
    protected abstract void WriteSnapshot(BinaryWriter writer);

    /// <summary>Called under the fold's lock: what will write the fold as it stands now, once the lock is released.</summary>
    /// <remarks>By default the fold written out uncompressed, into memory; a fold that can copy itself faster (a few
    /// array copies) overrides it. Either way the compression, most of a snapshot's time, holds no lock.</remarks>
    protected virtual Action<BinaryWriter> CaptureSnapshot()
    {
        var raw = new MemoryStream();
        using (var writer = new BinaryWriter(raw, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            WriteSnapshot(writer);
        }

        return writer => writer.Write(raw.GetBuffer(), 0, (int)raw.Length);
    }

    /// <summary>Replaces the fold with what <see cref="WriteSnapshot"/> wrote.</summary>
    protected abstract void ReadSnapshot(BinaryReader reader);

    /// <summary>Empties the fold: a snapshot that failed half-way through <see cref="ReadSnapshot"/> leaves nothing behind.</summary>
    protected abstract void ClearFold();

    /// <summary>Called before each snapshot is considered, in every process: the fold may forget what it no longer keeps.</summary>
    protected virtual void Housekeeping()
    {
    }

    /// <summary>Where this stream's snapshots are kept.</summary>
    public SnapshotStore Snapshots => snapshots ??= new SnapshotStore(connections, Topology.SnapshotStream(StreamName),
        connections.Topology.SnapshotStreamArguments(history.SnapshotStreamMaxBytes), maxMessageBytes);

    /// <summary>The snapshot this process started from, when it found one.</summary>
    public LoadedSnapshot? LoadedSnapshot { get; private set; }

    /// <summary>How many entries (markers aside) this process read after its snapshot, or from the stream's first entry
    /// without one, to hold everything the stream held when it started; final once <see cref="StartupReplayed"/> is done.</summary>
    public long StartupEntries => Interlocked.Read(ref startupEntries);

    /// <summary>Why the last attempt to look up or read the latest snapshot failed, while this process has loaded none
    /// and is trying again (not ready meanwhile); null otherwise.</summary>
    public string? SnapshotFailure
    {
        get => Volatile.Read(ref snapshotFailure);
        private set => Volatile.Write(ref snapshotFailure, value);
    }

    private string? snapshotFailure;

    /// <summary>How many markers this process waits to read back (its own, not yet seen).</summary>
    internal int MarkersWaiting => markers.Count;

    /// <summary>Completes once the fold holds everything the stream held when this process started.</summary>
    public Task StartupReplayed => startupReplayed.Task;

    /// <summary>Called once, when the stream has been read up to where it stood at start.</summary>
    /// <param name="bytes">The bytes of the entries the fold has taken in, those its snapshot covered included.</param>
    protected virtual void OnStartupReplayed(long bytes)
    {
    }

    /// <summary>Appends events and returns once the broker has confirmed them all.</summary>
    /// <exception cref="IOException">The broker is unreachable or did not confirm.</exception>
    public async Task AppendAsync(IReadOnlyList<TEvent> events, CancellationToken cancellationToken)
    {
        await writeChannelLock.WaitAsync(cancellationToken);
        try
        {
            var channel = await WriteChannelAsync(cancellationToken);
            foreach (var e in events)
            {
                var body = JsonSerializer.SerializeToUtf8Bytes(e, TypeInfo);
                await channel.BasicPublishAsync("", StreamName, mandatory: true,
                    new BasicProperties { Persistent = true, ContentType = "application/json" }, body, cancellationToken);
            }
        }
        catch (Exception e)
        {
            // Whatever went wrong (a timeout included), the channel may hold an unconfirmed write: start afresh.
            StreamLogMessages.WriteFailed(logger, StreamName, e.Message);
            await DropWriterAsync();
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new IOException($"the stream {StreamName} did not confirm: {e.Message}", e);
        }
        finally
        {
            writeChannelLock.Release();
        }
    }

    /// <summary>Appends <paramref name="events"/>, then returns once this process's tail has applied them (waiting at
    /// most <see cref="WriteTimeout"/> for both), so that this process reads its own writes.</summary>
    /// <remarks>
    /// Applied by the tail only, in the stream's order. Applying them here at once, beside the tail, would apply an
    /// entry the stream may not have (a write whose confirm was lost may or may not have landed), and could apply one
    /// after an entry that came after it: a <c>held</c> applied once the tail had already applied another process's
    /// <c>resumed</c> left this process holding a campaign that every other one sends. The cost is the tail's round trip.
    /// </remarks>
    /// <exception cref="IOException">The broker is unreachable, did not confirm, or the tail did not read the entries back
    /// in time: nothing was applied by this call (what the broker did take is applied when the tail reads it).</exception>
    public async Task RecordAsync(IReadOnlyList<TEvent> events, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(WriteTimeout);
        try
        {
            await AppendAndReadToNowAsync(events, timeout.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"the stream {StreamName} did not confirm, or was not read back, within {WriteTimeout.TotalSeconds} s", e);
        }
    }

    /// <summary>
    /// Waits (up to <paramref name="timeout"/>) for <see cref="StartupReplayed"/>: a process that just started rebuilds
    /// its state from the stream, and should not answer "unknown" meanwhile; false when the broker is away and the
    /// state is what it is.
    /// </summary>
    public async Task<bool> WaitForStartupReplayAsync(TimeSpan timeout)
    {
        try
        {
            await StartupReplayed.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Returns once this process's fold holds every entry written to the stream before the call, by any process.</summary>
    /// <remarks>Writes a marker and waits for the tail to read it back: a round trip through the broker.</remarks>
    public Task ReadToNowAsync(CancellationToken cancellationToken) => AppendAndReadToNowAsync([], cancellationToken);

    /// <summary>Appends <paramref name="events"/>, then returns once this process's fold holds them and every entry written
    /// before them, by any process: what came first on the stream is then known here as it is everywhere.</summary>
    /// <remarks>One write of the events and a marker, and the wait for the tail to read the marker back. Nothing is applied
    /// here before the tail reads it: the fold sees the events in stream order only.</remarks>
    /// <exception cref="IOException">The broker is unreachable or did not confirm.</exception>
    public async Task AppendAndReadToNowAsync(IReadOnlyList<TEvent> events, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        // Registered before the marker is written, so the tail cannot read it first.
        var seen = markers.WaitAsync(id);
        try
        {
            await AppendAsync([.. events, NewMarker(id)], cancellationToken);
            await seen.WaitAsync(cancellationToken);
        }
        finally
        {
            // Seen, or given up on (the append failed, the caller stopped waiting): a failed marker that did land
            // finds no one waiting, and nothing is kept for one that never comes.
            markers.Forget(id);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        StreamMetrics.Touch();
        using var measured = StreamMetrics.Folds.Add(this);
        tailing = Reconnecting.RunAsync(
            TailUntilDisconnectedAsync,
            (reason, delay) => StreamLogMessages.TailInterrupted(logger, StreamName, reason, delay.TotalSeconds),
            TimeSpan.FromMilliseconds(500), MaxReconnectDelay, stoppingToken);
        await Task.WhenAll(
            tailing,
            Reconnecting.RunAsync(
                SnapshotRoundsAsync,
                (reason, delay) => StreamLogMessages.SnapshotInterrupted(logger, StreamName, reason, delay.TotalSeconds),
                TimeSpan.FromSeconds(history.SnapshotSeconds), TimeSpan.FromSeconds(Math.Max(history.SnapshotSeconds, 30)), stoppingToken),
            // A failed write is logged by AppendAsync already; the unanswered probe keeps counting meanwhile.
            Reconnecting.RunAsync(ProbeLagAsync, (_, _) => { }, TimeSpan.FromSeconds(1), LagProbeInterval, stoppingToken));
    }

    string StreamMetrics.ILagging.StreamName => StreamName;

    /// <summary>The last probe's round trip, or how long the unanswered one has waited if that is longer.</summary>
    double? StreamMetrics.ILagging.LagSeconds
    {
        get
        {
            var since = Interlocked.Read(ref probeSince);
            var waiting = since == 0 ? 0 : System.Diagnostics.Stopwatch.GetElapsedTime(since).TotalSeconds;
            var last = Volatile.Read(ref lastLagSeconds);
            return since == 0 && double.IsNaN(last) ? null : Math.Max(double.IsNaN(last) ? 0 : last, waiting);
        }
    }

    /// <summary>Measures the fold's lag: the time from writing a marker to the tail applying it, every <see cref="LagProbeInterval"/>.</summary>
    /// <remarks>
    /// The stream's own tail offset is not something AMQP 0-9-1 tells a client, so the lag is measured as what matters:
    /// how long an entry written now takes to reach this process's fold (the broker's confirm included). A tail that
    /// stalls, or a broker that refuses the marker, leaves the probe unanswered, and its age is the lag from then on.
    /// Nothing is measured before the startup replay is done. Markers are not folded, and alone they call for no snapshot.
    /// </remarks>
    private async Task ProbeLagAsync(CancellationToken stoppingToken)
    {
        // Not during the startup replay: that is how long start-up takes (the readiness probe's business), not a lag.
        await StartupReplayed.WaitAsync(stoppingToken);
        using var timer = new PeriodicTimer(LagProbeInterval);
        do
        {
            // The oldest unanswered probe counts: one the broker refused stays outstanding until a later one comes back.
            Interlocked.CompareExchange(ref probeSince, System.Diagnostics.Stopwatch.GetTimestamp(), 0);
            await ReadToNowAsync(stoppingToken);
            var since = Interlocked.Exchange(ref probeSince, 0);
            Volatile.Write(ref lastLagSeconds, System.Diagnostics.Stopwatch.GetElapsedTime(since).TotalSeconds);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Before the first tail: the latest snapshot this code can read, if the stream holds one, so the tail
    /// starts from its offset.</summary>
    /// <exception cref="Exception">The lookup failed (the broker, not the snapshot): the tail's session ends and the next
    /// one tries again. Taking that as "no snapshot" would replay only what the stream's retention kept, and lose
    /// without a word what only the snapshot remembers; so the process stays not ready, saying why, until it loads.</exception>
    private async Task LoadSnapshotAsync(CancellationToken stoppingToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await foreach (var (data, snapshot) in Snapshots.NewestFirstAsync(stoppingToken))
            {
                if (TryLoad(data, snapshot, clock))
                {
                    SnapshotFailure = null;
                    return;
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            // The client's messages can carry a whole stack trace: the first line says what happened.
            var reason = e.Message.Split('\n', 2)[0].TrimEnd();
            SnapshotFailure = reason;
            StreamLogMessages.SnapshotNotLoaded(logger, StreamName, reason);
            throw;
        }

        SnapshotFailure = null;
        StreamLogMessages.NoSnapshot(logger, StreamName);
    }

    /// <summary>Replaces the fold with <paramref name="data"/>; false, with the fold emptied, when this code cannot read it.</summary>
    private bool TryLoad(byte[] data, LoadedSnapshot snapshot, System.Diagnostics.Stopwatch clock)
    {
        try
        {
            lock (foldLock)
            {
                Interlocked.Exchange(ref bytesRead, SnapshotStore.Decode(data, ReadSnapshot));
                Interlocked.Exchange(ref nextOffset, snapshot.Offset);
                snapshotOffset = snapshot.Offset;
                foldedOffset = snapshot.Offset;
                gapCheckFrom = snapshot.Offset;
                LoadedSnapshot = snapshot;
            }

            StreamLogMessages.SnapshotLoaded(logger, StreamName, snapshot.Offset, snapshot.Bytes, clock.ElapsedMilliseconds);
            return true;
        }
        catch (Exception e)
        {
            // Not of this code's format (a later version's, after a rollback) or damaged: an older one will do, the tail
            // brings the fold up to date from its offset (the gap check says if retention dropped entries meanwhile).
            // A fold half replaced is emptied first.
            lock (foldLock)
            {
                ClearFold();
            }

            StreamLogMessages.SnapshotUnreadable(logger, StreamName, snapshot.Offset, e.Message);
            return false;
        }
    }

    /// <summary>
    /// Every <see cref="HistoryOptions.SnapshotSeconds"/>, and every <see cref="HistoryOptions.SnapshotEntries"/> entries
    /// folded: housekeeping, then, in the one process holding the writer lock and when the stream has moved on since the
    /// last snapshot, a new snapshot of the fold. On stop, once the tail has applied its last entry, one more.
    /// </summary>
    private async Task SnapshotRoundsAsync(CancellationToken stoppingToken)
    {
        await StartupReplayed.WaitAsync(stoppingToken);
        await using var writer = new ExclusiveLock(connections, ConnectionRole.Publish, $"{Snapshots.Stream}.writer");
        try
        {
            while (true)
            {
                var forEntries = await schedule.WaitAsync(stoppingToken);
                if (!forEntries)
                {
                    Housekeeping();
                }

                if (Interlocked.Read(ref foldedOffset) <= Interlocked.Read(ref snapshotOffset))
                {
                    continue;
                }

                if (!await writer.HoldAsync(stoppingToken))
                {
                    schedule.Skipped();
                    continue;
                }

                await WriteSnapshotNowAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            await SnapshotOnStopAsync(writer);
            throw;
        }
    }

    /// <summary>A deploy's SIGTERM: the next process starts from what this one folded, not from the last round's snapshot.</summary>
    /// <remarks>Within the host's time to stop; not when another process holds the writer lock (it writes them).</remarks>
    private async Task SnapshotOnStopAsync(ExclusiveLock writer)
    {
        try
        {
            await tailing.WaitAsync(stopDeadline);
            if (Interlocked.Read(ref foldedOffset) > Interlocked.Read(ref snapshotOffset) && await writer.HoldAsync(stopDeadline))
            {
                await WriteSnapshotNowAsync(stopDeadline);
            }
        }
        catch (Exception e)
        {
            // The next process reads a little more: nothing is lost.
            StreamLogMessages.NoSnapshotOnStop(logger, StreamName, e.Message);
        }
    }

    /// <summary>Writes a snapshot of the fold as it stands, covering the entries the tail has applied.</summary>
    public async Task WriteSnapshotNowAsync(CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long offset;
        long entries;
        long streamBytes;
        Action<BinaryWriter> write;
        lock (foldLock)
        {
            offset = Interlocked.Read(ref nextOffset);
            if (offset < 0)
            {
                return; // nothing read yet
            }

            entries = schedule.Folded;
            streamBytes = Interlocked.Read(ref bytesRead);
            write = CaptureSnapshot();
        }

        // Written out and compressed outside the fold's locks, from the copy: that is most of the time a snapshot
        // takes, and the tail, sends and status answers wait for those locks.
        var data = SnapshotStore.Encode(streamBytes, write);
        var parts = await Snapshots.WriteAsync(data, offset, cancellationToken);
        Interlocked.Exchange(ref snapshotOffset, offset);
        schedule.Written(entries);
        StreamLogMessages.SnapshotWritten(logger, StreamName, offset, data.Length, parts, clock.ElapsedMilliseconds);
    }

    private async Task TailUntilDisconnectedAsync(CancellationToken stoppingToken)
    {
        if (Interlocked.Read(ref nextOffset) < 0)
        {
            await LoadSnapshotAsync(stoppingToken);
            if (LoadedSnapshot is not null)
            {
                // Reading it took several times its size for a moment: give that back now rather than carry it.
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }
        }

        var connection = await connections.GetAsync(ConnectionRole.Consume, stoppingToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        await DeclareAsync(ConnectionRole.Consume, stoppingToken);
        // A stream consumer must have a prefetch; its acks only return credit, so one ack covers many entries: an ack
        // each cost the replay (client and broker) about as much as the entry itself.
        await channel.BasicQosAsync(0, TailPrefetch, global: false, stoppingToken);

        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.ChannelShutdownAsync += (_, _) =>
        {
            lost.TrySetResult();
            return Task.CompletedTask;
        };

        // Disposed before the channel: the tail stops with deliveries still arriving.
        await using var acks = new AckGate(channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivered) =>
        {
            Apply(delivered);
            // Delivery tags count from 1 on each channel: never more than TailAckEvery are left without credit back.
            if (delivered.DeliveryTag % TailAckEvery == 0)
            {
                await acks.AckAsync(delivered.DeliveryTag, multiple: true);
            }
        };

        // The broker cancels a stream consumer whose local replica went away (a node of a cluster restarted).
        consumer.UnregisteredAsync += (_, _) =>
        {
            lost.TrySetResult();
            return Task.CompletedTask;
        };

        object start = Interlocked.Read(ref nextOffset) is >= 0 and var from ? from : "first";
        try
        {
            await channel.BasicConsumeAsync(StreamName, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
                arguments: new Dictionary<string, object?> { ["x-stream-offset"] = start }, consumer, stoppingToken);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason is { ReplyCode: 406 } reason
                                                                                 && reason.ReplyText.Contains("does not have a replica", StringComparison.Ordinal))
        {
            // RabbitMQ serves a stream to an AMQP 0-9-1 consumer only on a node holding a copy of it (a stream declared
            // before this node joined, or with fewer replicas): read it from another node.
            StreamLogMessages.NoReplicaHere(logger, StreamName, $"{connection.Endpoint.HostName}:{connection.Endpoint.Port}");
            await connections.MoveToAnotherNodeAsync(ConnectionRole.Consume, connection);
            throw;
        }

        StreamLogMessages.Tailing(logger, StreamName, start.ToString());
        if (!startupReplayed.Task.IsCompleted)
        {
            _ = Task.Run(() => MarkStartupReplayedAsync(lost.Task, stoppingToken), stoppingToken);
        }

        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (stoppingToken.Register(() => stopped.TrySetResult()))
        {
            await Task.WhenAny(lost.Task, stopped.Task);
        }

        if (!stoppingToken.IsCancellationRequested)
        {
            throw new IOException($"the tail of {StreamName} lost its channel, or the broker cancelled it");
        }
    }

    /// <summary>Completes <see cref="StartupReplayed"/> once the tail has read a marker written after it started; a marker
    /// that cannot be written (a blip just after connecting) is written again, for as long as this tail runs.</summary>
    private async Task MarkStartupReplayedAsync(Task lost, CancellationToken stoppingToken)
    {
        for (var delay = TimeSpan.FromMilliseconds(500); !lost.IsCompleted && !stoppingToken.IsCancellationRequested;
             delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxReconnectDelay.Ticks)))
        {
            try
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                await ReadToNowAsync(stoppingToken);
                if (startupReplayed.TrySetResult())
                {
                    StreamLogMessages.StartupReplayed(logger, StreamName, StartupEntries, LoadedSnapshot?.Offset, clock.ElapsedMilliseconds);
                    OnStartupReplayed(Interlocked.Read(ref bytesRead));
                }

                return;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // Written again below, or by the next connection's tail once this one is lost.
            }

            await Task.WhenAny(Task.Delay(delay, stoppingToken), lost);
        }
    }

    private void Apply(BasicDeliverEventArgs delivered)
    {
        lock (foldLock)
        {
            ApplyInOrder(delivered);
        }
    }

    private void ApplyInOrder(BasicDeliverEventArgs delivered)
    {
        if (delivered.BasicProperties.Headers?.TryGetValue("x-stream-offset", out var offset) == true && offset is long at)
        {
            if (at < Interlocked.Read(ref nextOffset))
            {
                return; // already applied before a reconnect
            }

            if (gapCheckFrom >= 0 && at > gapCheckFrom)
            {
                // The snapshot covered the entries before gapCheckFrom; retention dropped those from there to here.
                StreamLogMessages.HistoryLost(logger, StreamName, gapCheckFrom, at - 1);
            }

            gapCheckFrom = -1;
            Interlocked.Exchange(ref nextOffset, at + 1);
        }

        Interlocked.Add(ref bytesRead, delivered.Body.Length);

        try
        {
            if (JsonSerializer.Deserialize(delivered.Body.Span, TypeInfo) is { } e)
            {
                if (MarkerIdOf(e) is { } marker)
                {
                    markers.Seen(marker);
                    return;
                }

                Interlocked.Exchange(ref foldedOffset, Interlocked.Read(ref nextOffset));
                schedule.Fold();
                if (!startupReplayed.Task.IsCompleted)
                {
                    Interlocked.Increment(ref startupEntries);
                }

                Apply(e);
            }
        }
        catch (JsonException e)
        {
            StreamLogMessages.UnreadableEntry(logger, StreamName, e.Message);
        }
        catch (Exception e)
        {
            // One entry the fold cannot take must not stop the tail: everything after it still counts.
            StreamLogMessages.EntryNotApplied(logger, StreamName, Interlocked.Read(ref nextOffset) - 1, e.Message);
        }
    }

    private async Task<IChannel> WriteChannelAsync(CancellationToken cancellationToken)
    {
        if (writeChannel is { IsOpen: true } open)
        {
            return open;
        }

        await DropWriterAsync();
        writeChannel = await connections.CreateChannelAsync(ConnectionRole.Publish, BrokerConnections.ConfirmedChannel, cancellationToken);
        await DeclareAsync(ConnectionRole.Publish, cancellationToken);
        return writeChannel;
    }

    private async Task DropWriterAsync()
    {
        if (writeChannel is not null)
        {
            await writeChannel.DisposeAsync();
            writeChannel = null;
        }
    }

    // On a channel of its own: a declaration the broker refuses (a stream of an earlier version) closes its channel.
    private async Task DeclareAsync(ConnectionRole role, CancellationToken cancellationToken) =>
        await (await connections.GetAsync(role, cancellationToken)).DeclareAsync(StreamName, StreamArguments, logger, cancellationToken);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Before the rounds learn of the stop: their last snapshot takes what is left of the host's time to stop.
        stopDeadline = cancellationToken;
        if (StartupReplayed.IsCompletedSuccessfully)
        {
            // The tail first reads everything written before the stop (this process's last outcomes included), so the
            // snapshot on stop leaves the next process nothing to replay of it. A broker away costs at most a few seconds.
            using var caughtUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            caughtUp.CancelAfter(StopCatchUp);
            try
            {
                await ReadToNowAsync(caughtUp.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // Then the snapshot covers what the tail has read, and the next process reads the rest.
            }
        }

        await base.StopAsync(cancellationToken);
        try
        {
            await writeChannelLock.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The host's time to stop is up and a write still holds the channel: it goes with the process.
            return;
        }

        try
        {
            await DropWriterAsync();
        }
        finally
        {
            writeChannelLock.Release();
        }
    }
}

internal static partial class StreamLogMessages
{
    [LoggerMessage(LogLevel.Information, "Tailing {Stream} from offset {Offset}")]
    public static partial void Tailing(ILogger logger, string stream, string? offset);

    [LoggerMessage(LogLevel.Warning, "Tail of {Stream} interrupted ({Reason}); resuming in {Seconds} s")]
    public static partial void TailInterrupted(ILogger logger, string stream, string reason, double seconds);

    [LoggerMessage(LogLevel.Warning, "{Stream} has no replica on the node at {Endpoint}, so it cannot be read there; " +
        "reading it from another node. To read it anywhere: rabbitmq-streams add_replica {Stream} <node>")]
    public static partial void NoReplicaHere(ILogger logger, string stream, string endpoint);

    [LoggerMessage(LogLevel.Warning, "Writing to {Stream} was not confirmed: {Reason}")]
    public static partial void WriteFailed(ILogger logger, string stream, string reason);

    [LoggerMessage(LogLevel.Error, "Skipped an unreadable entry of {Stream}: {Reason}")]
    public static partial void UnreadableEntry(ILogger logger, string stream, string reason);

    [LoggerMessage(LogLevel.Information, "{Stream}: no snapshot yet; reading the stream from its first entry")]
    public static partial void NoSnapshot(ILogger logger, string stream);

    [LoggerMessage(LogLevel.Information, "{Stream}: loaded the snapshot covering offsets before {Offset} ({Bytes} bytes) in {Milliseconds} ms")]
    public static partial void SnapshotLoaded(ILogger logger, string stream, long offset, int bytes, long milliseconds);

    [LoggerMessage(LogLevel.Information, "{Stream}: wrote a snapshot covering offsets before {Offset} ({Bytes} bytes in {Parts} parts) in {Milliseconds} ms")]
    public static partial void SnapshotWritten(ILogger logger, string stream, long offset, int bytes, int parts, long milliseconds);

    [LoggerMessage(LogLevel.Warning, "{Stream}: the snapshot covering offsets before {Offset} cannot be read by this version ({Reason}); trying the one before it")]
    public static partial void SnapshotUnreadable(ILogger logger, string stream, long offset, string reason);

    [LoggerMessage(LogLevel.Error, "{Stream}: the latest snapshot could not be looked up or read from the broker ({Reason}); " +
        "not ready until it is, trying again (reading the stream from its first entry instead would lose what only the snapshot remembers)")]
    public static partial void SnapshotNotLoaded(ILogger logger, string stream, string reason);

    [LoggerMessage(LogLevel.Information, "{Stream}: read to where it stood at start: {Entries} entries after the snapshot covering offsets before {Offset}, the last {Milliseconds} ms waiting for the tail to catch up")]
    public static partial void StartupReplayed(ILogger logger, string stream, long entries, long? offset, long milliseconds);

    [LoggerMessage(LogLevel.Warning, "{Stream}: no snapshot was written on stop ({Reason}); the next process reads the entries since the last one")]
    public static partial void NoSnapshotOnStop(ILogger logger, string stream, string reason);

    [LoggerMessage(LogLevel.Warning, "Snapshots of {Stream} interrupted ({Reason}); trying again in {Seconds} s")]
    public static partial void SnapshotInterrupted(ILogger logger, string stream, string reason, double seconds);

    [LoggerMessage(LogLevel.Error, "{Stream}: entries {From} to {To} were dropped by the stream's retention before a snapshot covered them; what they recorded is lost to this process")]
    public static partial void HistoryLost(ILogger logger, string stream, long from, long to);

    [LoggerMessage(LogLevel.Error, "Entry {Offset} of {Stream} could not be applied and is skipped: {Reason}")]
    public static partial void EntryNotApplied(ILogger logger, string stream, long offset, string reason);
}
