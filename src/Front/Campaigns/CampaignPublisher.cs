using System.Text.Json;
using Bulk.Broker;
using Bulk.Broker.Telemetry;
using Bulk.Contracts;
using Bulk.Front.Broker;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Bulk.Front.Campaigns;

/// <summary>Puts a whole campaign on the work queue as one persistent message and waits for the broker's confirm.</summary>
/// <remarks>
/// One message per campaign is what makes "all or nothing" hold whatever fails: the broker either has the campaign
/// or it does not; there is no half-enqueued state to roll back. Workers split it into batches themselves.
/// </remarks>
public sealed partial class CampaignPublisher(BrokerConnection broker, IOptions<FrontOptions> options, ILogger<CampaignPublisher> logger)
{
    /// <summary>Publishes of one campaign the broker may refuse (nack or return) before the Front answers 503.</summary>
    private const int MaxAttempts = 3;

    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    private const ushort PreconditionFailed = 406;


    /// <param name="body">The job, serialized by <see cref="JobMessages.Serialize"/>.</param>
    /// <param name="fenced">Publish on this connection only (the one holding the campaign's idempotency key), never
    /// on a new one: a lock lost with its connection must not be outlived by its holder's publish.</param>
    /// <param name="deadline">The request's own deadline, when it began before this publish: the publish ends at the
    /// earlier of it and <c>Front__PublishTimeoutSeconds</c> from now.</param>
    /// <exception cref="MessageTooLargeException">The broker refused the message for its size.</exception>
    /// <exception cref="NotPublishedException">The broker was not reached: the campaign is not on it.</exception>
    /// <exception cref="BrokerUnavailableException">The publish failed once sent: the broker may or may not have the campaign.</exception>
    public async Task PublishAsync(DeliveryJob job, byte[] body, IConnection? fenced = null, CancellationToken deadline = default)
    {
        // Deliberately not the request's token: once the publish is on the wire, a client hanging up must not turn
        // an enqueued campaign into an unknown one. The timeout bounds how long we wait for the confirm.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(deadline);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds));
        var properties = JobMessages.Properties(campaignId: job.CampaignId, messageId: $"{job.CampaignId}/0");
        // The campaign's trace crosses the broker here: the Worker's spans are children of this one.
        using var activity = BulkTelemetry.StartPublish(broker.Topology.WorkQueue, job.CampaignId, properties);

        for (var attempt = 1; ; attempt++)
        {
            IChannel? channel = null;
            var sent = false;
            try
            {
                var connection = fenced ?? await broker.GetAsync(timeout.Token);
                if (!connection.IsOpen)
                {
                    LogLockLost(job.CampaignId);
                    throw new BrokerUnavailableException(new IOException("the connection holding the idempotency key closed"));
                }

                // The client alone would wait 20 s for a silent broker to open the channel, whatever the token says.
                channel = await BrokerAnswers.OpenChannelAsync(connection, BrokerConnections.ConfirmedChannel, timeout.Token);
                // With confirmation tracking on, this completes only when the broker has confirmed the message
                // (and throws if it was nacked or, being mandatory, returned as unroutable).
                // Earlier attempts were refused by the broker: only from here may the campaign be on it.
                sent = true;
                await channel.BasicPublishAsync(exchange: "", routingKey: broker.Topology.WorkQueue, mandatory: true,
                    basicProperties: properties, body: body, cancellationToken: timeout.Token);
                break;
            }
            catch (RabbitMQ.Client.Exceptions.PublishException e) when (attempt < MaxAttempts)
            {
                // Nacked or returned: the broker says the campaign is not on the queue (a quorum queue just declared
                // by another client may have no leader yet), so publishing it again cannot make two of it.
                LogPublishRefused(job.CampaignId, attempt, e.Message);
                await Task.Delay(RetryDelay * attempt, timeout.Token);
            }
            catch (BrokerUnavailableException e) when (!sent)
            {
                throw new NotPublishedException(e);
            }
            catch (BrokerUnavailableException)
            {
                throw;
            }
            catch (Exception) when (channel?.CloseReason is { ReplyCode: PreconditionFailed } reason
                                    && reason.ReplyText.Contains("max size", StringComparison.Ordinal))
            {
                // RabbitMq__MaxMessageBytes is set above the broker's max_message_size: trying again cannot help.
                LogTooLarge(job.CampaignId, body.Length, reason.ReplyText);
                throw new MessageTooLargeException(reason.ReplyText);
            }
            catch (Exception e)
            {
                activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e.Message);
                LogPublishFailed(job.CampaignId, e.Message);
                throw !sent ? new NotPublishedException(e) : new BrokerUnavailableException(e);
            }
            finally
            {
                if (channel is not null)
                {
                    // Closing waits for the broker too: past the deadline, it goes on without this request.
                    await BrokerAnswers.DisposeWithinAsync(channel, timeout.Token);
                }
            }
        }

        LogPublished(job.CampaignId, job.Recipients.Count, body.Length);
    }

    [LoggerMessage(LogLevel.Information, "Campaign {CampaignId} enqueued with {Count} recipients ({Bytes} bytes)")]
    private partial void LogPublished(string campaignId, int count, int bytes);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId}: the broker refused publish attempt {Attempt} ({Reason}); trying again")]
    private partial void LogPublishRefused(string campaignId, int attempt, string reason);

    [LoggerMessage(LogLevel.Error, "Campaign {CampaignId} ({Bytes} bytes) is larger than the broker takes, though not than RabbitMq__MaxMessageBytes: {Reason}")]
    private partial void LogTooLarge(string campaignId, int bytes, string reason);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} was not published: the connection holding its idempotency key closed, and the key with it")]
    private partial void LogLockLost(string campaignId);

    [LoggerMessage(LogLevel.Warning, "Campaign {CampaignId} was not confirmed by the broker: {Reason}")]
    private partial void LogPublishFailed(string campaignId, string reason);
}

/// <summary>The broker could not be reached, or no channel opened, before the campaign was published: it is not on the broker.</summary>
public sealed class NotPublishedException(Exception inner) : IOException(BrokerUnavailableException.Unavailable, inner);

/// <summary>The broker refused a message for its size (its <c>max_message_size</c>).</summary>
public sealed class MessageTooLargeException(string brokerSaid) : Exception(brokerSaid);
