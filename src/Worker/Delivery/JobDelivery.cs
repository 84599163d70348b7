using Bulk.Contracts;
using Bulk.Worker.Rendering;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.Options;

namespace Bulk.Worker.Delivery;

/// <summary>What became of every recipient of one job.</summary>
/// <param name="Deferred">Transient failures to try again later, in a new job.</param>
/// <param name="Returned">Not attempted because the Worker is stopping: back on the queue as they were.</param>
public sealed record JobOutcome(
    int Delivered,
    IReadOnlyList<RecipientFailure> Failed,
    IReadOnlyList<JobRecipient> Deferred,
    IReadOnlyList<JobRecipient> Returned);

/// <summary>A recipient that will not be mailed, with the relay's last reply.</summary>
public sealed record RecipientFailure(JobRecipient Recipient, string Reply);

/// <summary>Renders and sends every recipient of a job, as many at once as the SMTP pool has connections.</summary>
public sealed partial class JobDelivery(
    MessageRenderer renderer,
    SmtpSender sender,
    IOptions<SmtpOptions> smtp,
    IOptions<DeliveryOptions> delivery,
    ILogger<JobDelivery> logger)
{
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
            return new JobOutcome(0, [.. job.Recipients.Select(r => new RecipientFailure(r, $"unusable template: {e.Message}"))], [], []);
        }

        var results = new SendResult?[job.Recipients.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = smtp.Value.MaxConnections };
        await Parallel.ForEachAsync(Enumerable.Range(0, job.Recipients.Count), parallel, async (i, _) =>
        {
            if (stopping.IsCancellationRequested)
            {
                return;
            }

            var message = renderer.Render(campaign, job.Recipients[i]);
            try
            {
                results[i] = await sender.SendAsync(message, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Stopped between attempts: nothing reached the relay this time, so the recipient goes back as it was.
            }
        });

        return Tally(job, results);
    }

    private JobOutcome Tally(DeliveryJob job, SendResult?[] results)
    {
        var delivered = 0;
        var failed = new List<RecipientFailure>();
        var deferred = new List<JobRecipient>();
        var returned = new List<JobRecipient>();
        var giveUp = job.Attempt >= delivery.Value.MaxRequeues;
        for (var i = 0; i < results.Length; i++)
        {
            var recipient = job.Recipients[i];
            switch (results[i])
            {
                case null:
                    returned.Add(recipient);
                    break;
                case { Status: SendStatus.Delivered }:
                    delivered++;
                    break;
                case { Status: SendStatus.Rejected, Reply: var reply }:
                    failed.Add(new RecipientFailure(recipient, reply ?? "rejected"));
                    break;
                case { Reply: var reply } when giveUp:
                    failed.Add(new RecipientFailure(recipient, $"still failing after {job.Attempt + 1} attempts: {reply}"));
                    break;
                default:
                    deferred.Add(recipient);
                    break;
            }
        }

        foreach (var failure in failed)
        {
            LogFailed(job.CampaignId, failure.Recipient.Index, failure.Reply);
        }

        return new JobOutcome(delivered, failed, deferred, returned);
    }

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} has an unusable template: {Reason}")]
    private partial void LogUnusableTemplate(string campaignId, string reason);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} recipient #{Index} failed: {Reply}")]
    private partial void LogFailed(string campaignId, int index, string reply);
}
