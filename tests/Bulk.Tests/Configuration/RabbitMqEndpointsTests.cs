using Bulk.Broker;
using Bulk.Contracts;

namespace Bulk.Tests.Configuration;

/// <summary>Where a process connects: a cluster's nodes from <c>RabbitMq__Endpoints</c>, else the node of <c>RabbitMq__Uri</c>.</summary>
public sealed class RabbitMqEndpointsTests
{
    [Theory]
    [InlineData("amqp://guest:guest@127.0.0.1:5673/", "127.0.0.1", 5673)]
    [InlineData("amqp://guest:guest@rabbit/", "rabbit", 5672)]
    [InlineData("amqps://user:pass@rabbit.example.com/vhost", "rabbit.example.com", 5671)]
    public void WithoutEndpoints_TheUrisHostAndPortAreTheOneNode(string uri, string host, int port)
    {
        Assert.Equal([(host, port)], new RabbitMqOptions { Uri = uri }.ToEndpoints());
    }

    [Fact]
    public void Endpoints_AreEveryNodeInTheOrderGiven_WithSpacesAndIpv6Brackets()
    {
        var options = new RabbitMqOptions { Uri = "amqp://bulk:bulk@ignored:1/", Endpoints = "rabbit1:5672, rabbit2:5673 ,[::1]:5674" };

        Assert.Equal([("rabbit1", 5672), ("rabbit2", 5673), ("::1", 5674)], options.ToEndpoints());
    }

    [Fact]
    public void Replicas_AreDeclaredOnEveryQuorumQueueAndStream_AndDeadLetteringIsAtLeastOnce()
    {
        var topology = new RabbitMqOptions { Uri = "amqp://127.0.0.1/", Replicas = 5 }.ToTopology();

        foreach (var quorum in new[] { topology.WorkQueueArguments, topology.DeadQueueArguments, topology.RetryQueueArguments(TimeSpan.FromSeconds(2)), topology.RateTokensArguments(10) })
        {
            Assert.Equal("quorum", quorum["x-queue-type"]);
            Assert.Equal(5, quorum["x-quorum-initial-group-size"]);
        }

        foreach (var stream in new[] { topology.OutcomesStreamArguments("7D", 2_000_000_000), topology.SuppressionsStreamArguments })
        {
            Assert.Equal("stream", stream["x-queue-type"]);
            Assert.Equal(5, stream["x-initial-cluster-size"]);
        }

        // Without at-least-once, a dead letter is dropped when its target has no leader (a node just died).
        foreach (var deadLettering in new[] { topology.WorkQueueArguments, topology.RetryQueueArguments(TimeSpan.FromSeconds(2)) })
        {
            Assert.Equal(("at-least-once", "reject-publish"), (deadLettering["x-dead-letter-strategy"], deadLettering["x-overflow"]));
        }

        Assert.Equal(Topology.DefaultReplicas, new Topology().Replicas);
    }

    [Fact]
    public void AStreamHasACopyOnEveryListedNode_EvenWithFewerReplicas_SinceItIsReadOnlyWhereItHasOne()
    {
        var five = new RabbitMqOptions { Uri = "amqp://127.0.0.1/", Replicas = 3, Endpoints = "r1:5672,r2:5672,r3:5672,r4:5672,r5:5672" }.ToTopology();

        Assert.Equal(3, five.WorkQueueArguments["x-quorum-initial-group-size"]);
        Assert.Equal(5, five.OutcomesStreamArguments("7D", 2_000_000_000)["x-initial-cluster-size"]);
        Assert.Equal(5, five.SuppressionsStreamArguments["x-initial-cluster-size"]);
    }
}
