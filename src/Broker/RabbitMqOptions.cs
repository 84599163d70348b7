using System.ComponentModel.DataAnnotations;
using Bulk.Contracts;

namespace Bulk.Broker;

/// <summary>Where the broker is (<c>RabbitMq__Uri</c>, or a cluster's <c>RabbitMq__Endpoints</c>), how its queues are
/// replicated, and under which prefix Bulk's queues live (<c>RabbitMq__Prefix</c>).</summary>
public sealed class RabbitMqOptions : IValidatableObject
{
    public const string Section = "RabbitMq";

    private const string PrefixRule = "RabbitMq__Prefix must be letters, digits, '-', '_' or '.' (default: bulk)";
    private const string MaxAgeRule = "RabbitMq__OutcomesMaxAge must be a number and a unit (Y, M, D, h, m, s), e.g. 7D";
    private const string TemplatesMaxAgeRule = "RabbitMq__TemplatesMaxAge must be a number and a unit (Y, M, D, h, m, s), e.g. 90D";

    [Required(ErrorMessage = "RabbitMq__Uri is required: the broker to use, e.g. amqp://guest:guest@127.0.0.1:5672/")]
    public string? Uri { get; set; }

    /// <summary>A cluster's nodes as <c>host:port,host:port,…</c>; credentials, vhost and TLS still come from <see cref="Uri"/>.</summary>
    /// <remarks>Every connection is opened to the first node of the list that answers, and opened again to a surviving
    /// one when its node dies. Unset: the host and port of <see cref="Uri"/>.</remarks>
    public string? Endpoints { get; set; }

    /// <summary>Whether each process tries <see cref="Endpoints"/> in an order of its own (spreading connections over
    /// the nodes), or in the order listed (to prefer a node, e.g. the one on the same host).</summary>
    public bool ShuffleEndpoints { get; set; } = true;

    /// <summary>How often, in seconds, each connection and the broker tell each other they are alive (AMQP heartbeats).</summary>
    /// <remarks>A broker that stops answering without closing anything (a hung node, a network partition) is taken as
    /// gone after about three heartbeats missed, and its connections are opened again elsewhere (another node of
    /// <see cref="Endpoints"/>, or the same one once it answers). Unset, the client asks for 60 s and a silent broker
    /// held every connection for about three minutes. The broker's own <c>heartbeat</c> setting wins when lower.</remarks>
    [Range(1, 60, ErrorMessage = "RabbitMq__HeartbeatSeconds must be between 1 and 60")]
    public int HeartbeatSeconds { get; set; } = 10;

    /// <summary>How many nodes hold a copy of each quorum queue (x-quorum-initial-group-size) and, at least, of each stream (x-initial-cluster-size).</summary>
    /// <remarks>Fixed when a queue is first declared. A cluster with fewer nodes gives each node one copy. Streams get at
    /// least one copy per node in <see cref="Endpoints"/>: RabbitMQ serves a stream to an AMQP 0-9-1 consumer only on a
    /// node holding a copy, and a process may be connected to any of them.</remarks>
    [Range(1, 9, ErrorMessage = "RabbitMq__Replicas must be between 1 and 9")]
    public int Replicas { get; set; } = 3;

    /// <summary>The largest message the broker takes: its <c>max_message_size</c> (RabbitMQ 4.x: 16 MiB by default).</summary>
    /// <remarks>A campaign whose message would be larger is refused at 413 before anything is published.</remarks>
    [Range(4096, 536_870_912, ErrorMessage = "RabbitMq__MaxMessageBytes must be between 4096 and 536870912 (RabbitMQ's max_message_size)")]
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    [Required(ErrorMessage = PrefixRule)]
    [RegularExpression("^[A-Za-z0-9._-]+$", ErrorMessage = PrefixRule)]
    public string Prefix { get; set; } = Topology.DefaultPrefix;

    /// <summary>How long the outcomes stream keeps its entries (RabbitMQ's x-max-age: 7D, 12h, 30m…).</summary>
    [Required(ErrorMessage = MaxAgeRule)]
    [RegularExpression("^[0-9]+(Y|M|D|h|m|s)$", ErrorMessage = MaxAgeRule)]
    public string OutcomesMaxAge { get; set; } = "7D";

    /// <summary>How long the templates stream keeps a split campaign's message (RabbitMQ's x-max-age): a job of a
    /// campaign paused or retried for longer finds its template gone, and its recipients fail with that reason.</summary>
    [Required(ErrorMessage = TemplatesMaxAgeRule)]
    [RegularExpression("^[0-9]+(Y|M|D|h|m|s)$", ErrorMessage = TemplatesMaxAgeRule)]
    public string TemplatesMaxAge { get; set; } = "90D";

    /// <summary>The most the outcomes stream may hold on disk before old segments are dropped.</summary>
    [Range(1_000_000d, long.MaxValue, ErrorMessage = "RabbitMq__OutcomesMaxBytes must be at least 1000000")]
    public long OutcomesMaxBytes { get; set; } = 2_000_000_000;

    // Methods, not properties: the options validator reads every property, and these only make sense once valid.
    // A stream has a copy on every node listed, whatever Replicas says: it can only be read where it has one.
    public Topology ToTopology() => new(Prefix, Replicas, Math.Max(Replicas, ToEndpoints().Count));

    public Uri ToBrokerUri() => new(Uri!);

    /// <summary>The nodes to connect to, in the order given: <see cref="Endpoints"/>, else the host and port of <see cref="Uri"/>.</summary>
    public IReadOnlyList<(string Host, int Port)> ToEndpoints()
    {
        var uri = ToBrokerUri();
        if (string.IsNullOrWhiteSpace(Endpoints))
        {
            return [(uri.Host, uri.IsDefaultPort || uri.Port < 0 ? DefaultPort(uri) : uri.Port)];
        }

        return [.. Endpoints.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseEndpoint)];
    }

    private static int DefaultPort(Uri uri) => uri.Scheme == "amqps" ? 5671 : 5672;

    private static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        var host = colon > 0 ? endpoint[..colon].Trim('[', ']') : "";
        if (host.Length == 0 || host.Any(char.IsWhiteSpace) || !int.TryParse(endpoint[(colon + 1)..], out var port) || port is < 1 or > 65535)
        {
            throw new FormatException($"'{endpoint}' is not host:port");
        }

        return (host, port);
    }

    /// <summary>What the attributes cannot say: the URI must be one the client can use.</summary>
    /// <remarks>Data annotations run this only once every attribute holds.</remarks>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
        {
            yield return new ValidationResult(
                "RabbitMq__Uri must be an amqp:// or amqps:// URI, e.g. amqp://guest:guest@127.0.0.1:5672/", [nameof(Uri)]);
            yield break;
        }

        if (Endpoints is not null)
        {
            string? problem = null;
            try
            {
                if (ToEndpoints().Count == 0)
                {
                    problem = "names no node";
                }
            }
            catch (FormatException e)
            {
                problem = e.Message;
            }

            if (problem is not null)
            {
                yield return new ValidationResult(
                    $"RabbitMq__Endpoints must be a comma-separated list of host:port, e.g. rabbit1:5672,rabbit2:5672,rabbit3:5672 ({problem})", [nameof(Endpoints)]);
            }
        }
    }
}
