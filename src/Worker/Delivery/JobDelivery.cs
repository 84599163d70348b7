using Bulk.Contracts;
using Bulk.Worker.Rendering;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Delivery;

/// <summary>What a job leaves behind once every recipient in it has a recorded outcome.</summary>
/// <param name="Deferred">Transient failures with delay tiers left: they go to the next tier.</param>
/// <param name="DeadLettered">Transient failures past the last tier: parked, and recorded as failed.</param>
/// <param name="Returned">Not attempted (the Worker is stopping, or the campaign was paused or cancelled meanwhile).</param>
/// <param name="Suppressed">On the suppression list: recorded as suppressed, not sent.</param>
public sealed record JobOutcome(
    int Delivered,
    int Failed,
    int Skipped,
    int Suppressed,
    IReadOnlyList<JobRecipient> Deferred,
    IReadOnlyList<JobRecipient> DeadLettered,
    IReadOnlyList<JobRecipient> Returned,
    string? LastReply);

/// <summary>Renders and sends every recipient of a job, as many at once as the SMTP pool has connections.</summary>
/// <remarks>
/// A recipient the ledger already records as done (delivered, failed or suppressed) is skipped: that is what makes a
/// redelivered job safe. A recipient on the suppression list is recorded as suppressed and never sent; one the relay
/// refuses as unknown (5.1.1) goes on the list. Each outcome is recorded on the stream before the job counts it.
/// </remarks>
public sealed partial class JobDelivery(
    MessageRenderer renderer,
    SmtpSender sender,
    OutcomeRecorder recorder,
    CampaignLedger ledger,
    SuppressionLog suppressions,
    IOptions<SmtpOptions> smtp,
    IOptions<DeliveryOptions> delivery,
    ILogger<JobDelivery> logger)
{
    private readonly int tierCount = delivery.Value.ToRetryTiers().Count;

    public async Task<JobOutcome> DeliverAsync(DeliveryJob job, CancellationToken stopping)
    {
        CompiledCampaign campaign;
        try
        {
            campaign = renderer.Compile(job.CampaignId, job.Template);
        }
        catch (TemplateException e)
        {
            LogUnusableTemplate(job.CampaignId, e.Message);
            await Task.WhenAll(job.Recipients.Select(r => recorder.FailedAsync(job, new FailedRecipient(r.Index, r.Email, $"unusable template: {e.Message}"))));
            return new JobOutcome(0, job.Recipients.Count, 0, 0, [], [], [], null);
        }

        var results = new SendResult?[job.Recipients.Count];
        var skipped = new bool[job.Recipients.Count];
        var suppressed = new bool[job.Recipients.Count];
        var records = new Task[job.Recipients.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = smtp.Value.MaxConnections };
        await Parallel.ForEachAsync(Enumerable.Range(0, job.Recipients.Count), parallel, async (i, _) =>
        {
            records[i] = Task.CompletedTask;
            var recipient = job.Recipients[i];
            switch (ledger.State(job.CampaignId, recipient.Index))
            {
                case RecipientState.Done:
                    skipped[i] = true;
                    return;
                case RecipientState.Paused or RecipientState.Cancelled:
                    return; // checked before every send: a pause or cancel takes effect within one mail per connection
            }

            if (stopping.IsCancellationRequested)
            {
                return;
            }

            if (suppressions.List.Find(recipient.Email) is not null)
            {
                suppressed[i] = true;
                records[i] = recorder.SuppressedAsync(job, recipient);
                return;
            }

            OutcomeRecorder.Slot slot;
            SendResult result;
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
                result = await sender.SendAsync(renderer.Render(campaign, recipient), MessageRenderer.EnvelopeSender(campaign, recipient), stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                slot.Dispose();
                return; // stopped between attempts: nothing reached the relay this time
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
        });

        // Every outcome is on the stream before the job can be acked.
        await Task.WhenAll(records);
        return Tally(job, results, skipped, suppressed);
    }

    /// <summary>"No such user" (enhanced status 5.1.1): the address is put on the suppression list for every campaign.</summary>
    public static bool IsUnknownMailbox(string? reply) =>
        reply is not null && reply.StartsWith('5') && UnknownMailbox().IsMatch(reply);

    private async Task SuppressBouncedAsync(string campaignId, string email, string reply)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await suppressions.RecordAsync(
                [new SuppressionEvent(SuppressionTypes.Suppressed, email, DateTimeOffset.UtcNow, SuppressionReasons.HardBounce, campaignId, reply)],
                timeout.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The failure itself is recorded; the next campaign that reaches this address bounces and tries again.
            LogBounceNotSuppressed(email, e.Message);
        }
    }

    private JobOutcome Tally(DeliveryJob job, SendResult?[] results, bool[] skipped, bool[] suppressed)
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

        return new JobOutcome(delivered, failed, skip, suppress, deferred, dead, returned, lastReply);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(^|\D)5\.1\.1(\D|$)")]
    private static partial System.Text.RegularExpressions.Regex UnknownMailbox();

    [LoggerMessage(LogLevel.Warning, "A hard bounce of {Email} could not be put on the suppression list: {Reason}")]
    private partial void LogBounceNotSuppressed(string email, string reason);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} has an unusable template: {Reason}")]
    private partial void LogUnusableTemplate(string campaignId, string reason);

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} recipient #{Index} failed: {Reply}")]
    private partial void LogFailed(string campaignId, int index, string? reply);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: {Count} recipients dead-lettered after the last delay tier: {Reply}")]
    private partial void LogDeadLettered(string campaignId, int count, string? reply);
}
