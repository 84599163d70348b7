namespace Bulk.Contracts;

/// <summary>Names of the AMQP message headers Bulk sets.</summary>
public static class AmqpHeaders
{
    public const string CampaignId = "bulk-campaign-id";
    public const string DeadReason = "bulk-dead-reason";
    public const string JobType = "bulk.delivery-job.v1";
}
