using System.Diagnostics;
using Bulk.Broker.Outcomes;
using Bulk.Broker.Suppressions;
using Bulk.Contracts;
using Bulk.Contracts.Outcomes;
using Bulk.Contracts.Suppressions;
using Bulk.Templates;
using Bulk.Worker.Rendering;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Delivery;

/// <summary>What a job leaves behind once every recipient in it has a recorded outcome.</summary>
/// <param name="Deferred">Transient failures with delay tiers left: they go to the next tier.</param>
/// <param name="DeadLettered">Transient failures past the last tier: parked, and recorded as failed.</param>
/// <param name="Returned">Not attempted (the Worker is stopping, the campaign was paused, held or cancelled meanwhile, or
/// their domain's rate limit or back-off would have kept the job waiting).</param>
/// <param name="Suppressed">On the suppression list: recorded as suppressed, not sent.</param>
/// <param name="HeldBy">The relay's reply when it refused the campaign's sender: the campaign is to be held.</param>
public sealed record JobOutcome(
    int Delivered,
    int Failed,
    int Skipped,
    int Suppressed,
    IReadOnlyList<JobRecipient> Deferred,
    IReadOnlyList<JobRecipient> DeadLettered,
    IReadOnlyList<JobRecipient> Returned,
    string? LastReply,
    string? HeldBy = null);

/// <summary>A job broke off: <see cref="Undecided"/> are its recipients that have no outcome from it.</summary>
/// <remarks>Every outcome it did hand to the recorder is recorded (or the recorder stopped) before this is thrown.</remarks>
public sealed class JobInterruptedException(IReadOnlyList<JobRecipient> undecided, Exception inner)
    : Exception($"{inner.GetType().Name}: {inner.Message}", inner)
{
    public IReadOnlyList<JobRecipient> Undecided { get; } = undecided;
}

/// <summary>Renders and sends every recipient of a job, as many at once as the SMTP pool has connections.</summary>
/// <remarks>
/// A recipient the ledger already records as done (delivered, failed or suppressed) is skipped: that is what makes a
/// redelivered job safe. A recipient on the suppression list is recorded as suppressed and never sent; one the relay
/// refuses as unknown (5.1.1 to RCPT TO) goes on the list; one whose message cannot render fails with the reason.
/// When the relay refuses the sender, the recipients not yet sent are handed back and the campaign is to be held.
/// A recipient whose domain has a rate of its own (or a back-off after the relay's "too many") waits for the domain's
/// turn holding nothing the job's other recipients need; what still waits once the rest of the job is done is handed
/// back unsent, so that one slow domain sets neither the pace of the others nor the length of the job.
/// Each outcome is recorded on the stream before the job counts it, and each unrecorded-outcome slot is given back
/// whatever happens.
/// </remarks>
public sealed partial class JobDelivery(
    MessageRenderer renderer,
    CampaignTemplates templates,
    SmtpSender sender,
    SendRateLimits limits,
    OutcomeRecorder recorder,
    CampaignLedger ledger,
    SuppressionLog suppressions,
    DeliveryObserver observer,
    DeliveryMetrics metrics,
    RenderTurns turns,
    IOptions<SmtpOptions> smtp,
    IOptions<DeliveryOptions> delivery,
    ILogger<JobDelivery> logger)
{
    /// <summary>How long a job with nothing but recipients waiting for their domains' turns waits for them before it
    /// hands the rest back.</summary>
    /// <remarks>
    /// Long enough that such a job sends a share of its domains' rates each time it comes round rather than going back
    /// and forth through the queue in a busy loop; short enough that it keeps a place of the Worker's prefetch from other
    /// jobs for no longer than that.
    /// </remarks>
    public static readonly TimeSpan ThrottledPatience = TimeSpan.FromSeconds(1);

    private readonly int tierCount = delivery.Value.ToRetryTiers().Count;
    private readonly long renderSlice = delivery.Value.RenderSliceMilliseconds * Stopwatch.Frequency / 1000;

    public async Task<JobOutcome> DeliverAsync(DeliveryJob job, CancellationToken stopping)
    {
        CompiledCampaign campaign;
        try
        {
            campaign = await templates.CompiledAsync(job, stopping);
        }
        catch (Exception e) when (e is TemplateException or TemplateGoneException)
        {
            LogUnusableTemplate(job.CampaignId, e.Message);
            // Those already done keep their outcome (a redelivered job); the others fail with the reason.
            var undone = job.Recipients.Where(r => ledger.State(job.CampaignId, r.Index) != RecipientState.Done).ToList();
            await Task.WhenAll(undone.Select(r => recorder.FailedAsync(job, new FailedRecipient(r.Index, r.Email, $"template: {e.Message}"))));
            return new JobOutcome(0, undone.Count, job.Recipients.Count - undone.Count, 0, [], [], [], null);
        }

        // Each mail is an event of the job's span (a 100,000-recipient campaign makes one span per job, not per mail).
        var span = Activity.Current is { IsAllDataRequested: true } current ? current : null;
        var count = job.Recipients.Count;
        var results = new SendResult?[count];
        var skipped = new bool[count];
        var suppressed = new bool[count];
        var records = new Task?[count];
        string? heldBy = null;
        var envelopeSender = (campaign.Bounce ?? campaign.From).Address;
        var resumedAt = ledger.Find(job.CampaignId)?.ResumedAt;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = smtp.Value.MaxConnections };
        var started = Stopwatch.GetTimestamp();
        // What the job's renderings took in all: past the slice, the job starts no more and hands the rest back, behind
        // the jobs of other campaigns waiting on the queue.
        long rendering = 0;
        try
        {
            // Whether recipient i is still to be sent: true; false when it is done already (counted as skipped); null
            // when nothing more of the job is (paused, held, cancelled, stopping). Checked before every send, so a pause
            // or cancel takes effect within one mail per connection.
            bool? StillToSend(int i)
            {
                switch (ledger.State(job.CampaignId, job.Recipients[i].Index))
                {
                    case RecipientState.Done:
                        skipped[i] = true;
                        return false;
                    case RecipientState.Paused or RecipientState.Held or RecipientState.Cancelled:
                        return null;
                }

                return stopping.IsCancellationRequested || Volatile.Read(ref heldBy) is not null || Interlocked.Read(ref rendering) > renderSlice ? null : true;
            }

            async ValueTask SendOneAsync(int i, bool domainTurnTaken)
            {
                var recipient = job.Recipients[i];
                if (StillToSend(i) is not true)
                {
                    return;
                }

                if (suppressions.List.Find(recipient.Email) is not null)
                {
                    MailEvent(span, recipient.Index, "suppressed", null, TimeSpan.Zero);
                    suppressed[i] = true;
                    records[i] = recorder.SuppressedAsync(job, recipient);
                    return;
                }

                OutcomeRecorder.Slot? slot;
                try
                {
                    slot = await recorder.ReserveAsync(stopping);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return;
                }

                try
                {
                    MimeKit.MimeMessage message;
                    RenderTurns.Turn turn;
                    try
                    {
                        turn = await turns.TakeAsync(job.CampaignId, stopping);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                        return;
                    }

                    try
                    {
                        observer.Step(DeliveryStep.Render);
                        var began = Stopwatch.GetTimestamp();
                        try
                        {
                            message = renderer.Render(campaign, recipient);
                        }
                        finally
                        {
                            Interlocked.Add(ref rendering, Stopwatch.GetTimestamp() - began);
                            turn.Dispose();
                        }
                    }
                    catch (TemplateRenderException e)
                    {
                        var reason = $"template: {e.Message}";
                        MailEvent(span, recipient.Index, "failed", reason, TimeSpan.Zero);
                        results[i] = new SendResult(SendStatus.Rejected, reason);
                        records[i] = recorder.FailedAsync(job, new FailedRecipient(recipient.Index, recipient.Email, reason), slot);
                        slot = null;
                        return;
                    }

                    SendResult result;
                    var sending = Stopwatch.GetTimestamp();
                    try
                    {
                        result = await sender.SendAsync(message, MessageRenderer.EnvelopeSender(campaign, recipient), envelopeSender, resumedAt,
                            domainTurnTaken, stopping);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                        return; // stopped between attempts: nothing reached the relay this time
                    }
                    finally
                    {
                        // Its parts' content goes back to MimeKit's block pool for the next mail.
                        message.Dispose();
                    }

                    MailEvent(span, recipient.Index, result.Status switch
                    {
                        SendStatus.Delivered => "delivered",
                        SendStatus.Rejected => "failed",
                        SendStatus.SenderRefused => "held",
                        _ when job.Attempt < tierCount => "deferred",
                        _ => "dead_lettered",
                    }, result.Reply, Stopwatch.GetElapsedTime(sending));
                    if (result.Status == SendStatus.SenderRefused)
                    {
                        // Not this recipient's failure: it stays pending, and the campaign waits until someone resumes it.
                        metrics.Held();
                        Interlocked.CompareExchange(ref heldBy, result.Reply ?? "the relay refused the sender", null);
                        return;
                    }

                    results[i] = result;
                    // Not awaited here: the sender moves on while the recorder batches; the job waits for all of them below.
                    records[i] = result.Status switch
                    {
                        SendStatus.Delivered => recorder.DeliveredAsync(job, recipient, slot),
                        SendStatus.Rejected when IsUnknownMailbox(result.Reply) => Task.WhenAll(
                            recorder.FailedAsync(job, new FailedRecipient(recipient.Index, recipient.Email, result.Reply!), slot),
                            SuppressBouncedAsync(job.CampaignId, recipient.Email, result.Reply!)),
                        SendStatus.Rejected => recorder.FailedAsync(job, new FailedRecipient(recipient.Index, recipient.Email, result.Reply ?? "rejected"), slot),
                        _ when job.Attempt < tierCount => recorder.DeferredAsync(job, new DeferredRecipient(recipient.Index, job.Attempt + 1, result.Reply ?? "deferred"), slot),
                        _ => recorder.FailedAsync(job, new FailedRecipient(recipient.Index, recipient.Email,
                            $"dead-lettered after {tierCount} delay tiers: {result.Reply}", DeadLettered: true), slot),
                    };
                    slot = null; // the recorder frees it once the outcome is confirmed
                }
                finally
                {
                    slot?.Dispose();
                }
            }

            // A recipient whose domain may have to wait waits for its turn in a lane of its own, holding no send slot,
            // SMTP connection or unrecorded-outcome slot; its lane gives up when the rest of the job is done.
            var (plain, lanes) = Lanes(job);
            using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            var broken = false;
            var waiting = Task.WhenAll(lanes.Select(lane => SendLaneAsync(lane.Key, lane.Value)));
            try
            {
                // A send that breaks off in a lane ends the job like one here: nothing more is started.
                await Parallel.ForEachAsync(plain, parallel,
                    (i, _) => Volatile.Read(ref broken) ? ValueTask.CompletedTask : SendOneAsync(i, domainTurnTaken: false));
                if (plain.Count == 0)
                {
                    // Waiting is all this job does: it waits a while, or it would be handed back and forth in a busy loop.
                    var patience = ThrottledPatience - Stopwatch.GetElapsedTime(started);
                    await waiting.WaitAsync(patience > TimeSpan.Zero ? patience : TimeSpan.Zero).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
            catch (Exception)
            {
                Volatile.Write(ref broken, true);
                throw;
            }
            finally
            {
                // Whatever ended the rest of the job, no lane sends anything after this one has settled.
                await giveUp.CancelAsync();
                await waiting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await waiting;

            async Task SendLaneAsync(string domain, List<int> lane)
            {
                // The lane waits for turns, not for its sends: as many of them go at once as the rest of the job may send.
                using var sending = new SemaphoreSlim(smtp.Value.MaxConnections);
                var sends = new List<Task>();
                try
                {
                    for (var n = 0; n < lane.Count; n++)
                    {
                        var i = lane[n];
                        var recipient = job.Recipients[i];
                        switch (StillToSend(i))
                        {
                            case false:
                                continue;
                            case null:
                                return;
                        }

                        // A suppressed recipient is recorded, not sent: it takes no turn.
                        var onList = suppressions.List.Find(recipient.Email) is not null;
                        if (!onList)
                        {
                            observer.Step(DeliveryStep.RateLimit);
                        }

                        if (!onList && !await limits.WaitDomainTurnAsync(domain, giveUp.Token))
                        {
                            if (!stopping.IsCancellationRequested && !Volatile.Read(ref broken))
                            {
                                metrics.HandedBack(lane.Count - n);
                                LogHandedBack(job.CampaignId, lane.Count - n, domain);
                            }

                            return;
                        }

                        await sending.WaitAsync(CancellationToken.None);
                        if (Volatile.Read(ref broken))
                        {
                            sending.Release();
                            return;
                        }

                        sends.Add(SendInLaneAsync(i, domainTurnTaken: !onList, sending));
                    }
                }
                finally
                {
                    await Task.WhenAll(sends);
                }
            }

            async Task SendInLaneAsync(int i, bool domainTurnTaken, SemaphoreSlim sending)
            {
                try
                {
                    await SendOneAsync(i, domainTurnTaken);
                }
                catch (Exception)
                {
                    // The job breaks off: nothing more is started, and no lane goes on waiting for its domain.
                    Volatile.Write(ref broken, true);
                    await giveUp.CancelAsync();
                    throw;
                }
                finally
                {
                    sending.Release();
                }
            }

            // Every outcome is on the stream before the job can be acked.
            await Task.WhenAll(records.Select(r => r ?? Task.CompletedTask));
        }
        catch (Exception e) when (!(e is OperationCanceledException && stopping.IsCancellationRequested))
        {
            // What was handed to the recorder is recorded; the rest of the job is the caller's to park.
            await Task.WhenAll(records.Select(r => r ?? Task.CompletedTask)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var undecided = job.Recipients.Where((_, i) => !skipped[i] && records[i] is not { IsCompletedSuccessfully: true }).ToList();
            throw new JobInterruptedException(undecided, e);
        }

        return Tally(job, results, skipped, suppressed, heldBy);
    }

    /// <summary>The job's recipients whose domains may have to wait (<see cref="SendRateLimits.LimitsDomain"/>), by
    /// domain in the job's order, and the others.</summary>
    private (List<int> Plain, Dictionary<string, List<int>> Lanes) Lanes(DeliveryJob job)
    {
        var count = job.Recipients.Count;
        var lanes = new Dictionary<string, List<int>>(StringComparer.OrdinalIgnoreCase);
        if (!limits.LimitsAnyDomain)
        {
            return ([.. Enumerable.Range(0, count)], lanes);
        }

        var plain = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            var email = job.Recipients[i].Email;
            var domain = email[(email.LastIndexOf('@') + 1)..];
            if (!limits.LimitsDomain(domain))
            {
                plain.Add(i);
            }
            else if (lanes.TryGetValue(domain, out var lane))
            {
                lane.Add(i);
            }
            else
            {
                lanes.Add(domain, [i]);
            }
        }

        return (plain, lanes);
    }

    /// <summary>One mail of the job, as an event of its span: the recipient's index (never the address), what became
    /// of it, the relay's reply and how long the send took (the immediate retries included).</summary>
    private static void MailEvent(Activity? span, int index, string outcome, string? reply, TimeSpan took)
    {
        if (span is null)
        {
            return;
        }

        var tags = new ActivityTagsCollection
        {
            ["bulk.recipient.index"] = index,
            ["bulk.mail.outcome"] = outcome,
            ["bulk.mail.duration_ms"] = Math.Round(took.TotalMilliseconds, 1),
        };
        if (reply is not null)
        {
            // Relays often quote the address they refuse: traces carry no addresses.
            tags["bulk.mail.reply"] = Address().Replace(reply.Length > 200 ? reply[..200] : reply, "<address>");
        }

        span.AddEvent(new ActivityEvent("mail", tags: tags));
    }

    /// <summary>"No such user" (enhanced status 5.1.1): the address is put on the suppression list for every campaign.</summary>
    public static bool IsUnknownMailbox(string? reply) =>
        reply is not null && reply.StartsWith('5') && UnknownMailbox().IsMatch(reply);

    private async Task SuppressBouncedAsync(string campaignId, string email, string reply)
    {
        try
        {
            await suppressions.RecordAsync(
                [new SuppressionEvent(SuppressionType.Suppressed, email, DateTimeOffset.UtcNow, SuppressionReasons.HardBounce, campaignId, reply)],
                CancellationToken.None);
        }
        catch (IOException e)
        {
            // The failure itself is recorded; the next campaign that reaches this address bounces and tries again.
            LogBounceNotSuppressed(email, e.Message);
        }
    }

    private JobOutcome Tally(DeliveryJob job, SendResult?[] results, bool[] skipped, bool[] suppressed, string? heldBy)
    {
        int delivered = 0, failed = 0, skip = 0, suppress = 0;
        List<JobRecipient> deferred = [], dead = [], returned = [];
        string? lastReply = null;
        for (var i = 0; i < results.Length; i++)
        {
            var recipient = job.Recipients[i];
            if (skipped[i])
            {
                skip++;
                continue;
            }

            if (suppressed[i])
            {
                suppress++;
                continue;
            }

            switch (results[i])
            {
                case null:
                    returned.Add(recipient);
                    break;
                case { Status: SendStatus.Delivered }:
                    delivered++;
                    break;
                case { Status: SendStatus.Rejected, Reply: var reply }:
                    failed++;
                    LogFailed(job.CampaignId, recipient.Index, reply);
                    break;
                case { Reply: var reply }:
                    lastReply = reply;
                    (job.Attempt < tierCount ? deferred : dead).Add(recipient);
                    break;
            }
        }

        if (dead.Count > 0)
        {
            LogDeadLettered(job.CampaignId, dead.Count, lastReply);
        }

        return new JobOutcome(delivered, failed, skip, suppress, deferred, dead, returned, lastReply, heldBy);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"[^\s<>""]+@[^\s<>""]+")]
    private static partial System.Text.RegularExpressions.Regex Address();

    [System.Text.RegularExpressions.GeneratedRegex(@"(^|\D)5\.1\.1(\D|$)")]
    private static partial System.Text.RegularExpressions.Regex UnknownMailbox();

    [LoggerMessage(LogLevel.Warning, "A hard bounce of {Email} could not be put on the suppression list: {Reason}")]
    private partial void LogBounceNotSuppressed(string email, string reason);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} has an unusable template: {Reason}")]
    private partial void LogUnusableTemplate(string campaignId, string reason);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} recipient #{Index} failed: {Reply}")]
    private partial void LogFailed(string campaignId, int index, string? reply);

    [LoggerMessage(LogLevel.Debug, "Campaign {CampaignId}: {Count} recipients at {Domain} handed back unsent, the domain's rate limit or back-off would keep the job waiting")]
    private partial void LogHandedBack(string campaignId, int count, string domain);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: {Count} recipients dead-lettered after the last delay tier: {Reply}")]
    private partial void LogDeadLettered(string campaignId, int count, string? reply);
}
