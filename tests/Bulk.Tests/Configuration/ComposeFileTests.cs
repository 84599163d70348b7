using YamlDotNet.RepresentationModel;

namespace Bulk.Tests.Configuration;

/// <summary>No Docker engine runs here, so the compose file and Dockerfiles are checked by reading them.</summary>
public sealed class ComposeFileTests
{
    private static readonly string Root = FindRoot();

    private static readonly YamlMappingNode Services = LoadServices();

    [Fact]
    public void ComposeRunsTheBrokerTheCatcherTheFrontAndAWorker()
    {
        Assert.Equal(["front", "mailpit", "rabbitmq", "worker"], Services.Children.Keys.Select(k => k.ToString()).Order());
        Assert.Matches("^rabbitmq:[0-9.]+-management", Scalar("rabbitmq", "image"));
        Assert.StartsWith("axllent/mailpit", Scalar("mailpit", "image"));
    }

    [Theory]
    [InlineData("front", "Bulk.Front.dll")]
    [InlineData("worker", "Bulk.Worker.dll")]
    public void EachOfOurServicesBuildsFromADockerfileThatExistsAndRunsItsAssembly(string service, string assembly)
    {
        var dockerfile = Path.Combine(Root, Scalar(service, "build", "dockerfile"));
        Assert.Equal(".", Scalar(service, "build", "context"));
        Assert.True(File.Exists(dockerfile), $"{dockerfile} is missing");

        var lines = File.ReadAllLines(dockerfile);
        Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal) && l.Contains(assembly, StringComparison.Ordinal));
        // Every COPY from the build context names something that exists in the repository.
        foreach (var copy in lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            var sources = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1];
            Assert.All(sources, s => Assert.True(Path.Exists(Path.Combine(Root, s)), $"{dockerfile}: {s} does not exist"));
        }
    }

    [Fact]
    public void TheWorkerIsConfiguredThroughEnvironmentVariables_AndCanBeScaled()
    {
        var worker = (YamlMappingNode)Services["worker"];
        Assert.False(worker.Children.ContainsKey("container_name"), "a fixed container name prevents --scale");
        Assert.False(worker.Children.ContainsKey("ports"), "a published port prevents --scale");
        Assert.Equal("mailpit", Scalar("worker", "environment", "Smtp__Host"));
        Assert.Equal("1025", Scalar("worker", "environment", "Smtp__Port"));
        Assert.Equal("None", Scalar("worker", "environment", "Smtp__Security"));
        Assert.Contains("@rabbitmq:5672", Scalar("worker", "environment", "RabbitMq__Uri"));
        Assert.Equal("service_healthy", Scalar("worker", "depends_on", "rabbitmq", "condition"));
    }

    [Fact]
    public void TheFrontListensOn8080AndReachesTheBrokerByServiceName()
    {
        Assert.Contains("@rabbitmq:5672", Scalar("front", "environment", "RabbitMq__Uri"));
        var ports = (YamlSequenceNode)((YamlMappingNode)Services["front"])["ports"];
        Assert.Contains(ports, p => p.ToString().EndsWith(":8080:8080", StringComparison.Ordinal));
        // Containers reach each other, not through the guest user, which RabbitMQ keeps to localhost.
        var user = Scalar("rabbitmq", "environment", "RABBITMQ_DEFAULT_USER");
        Assert.Contains($"amqp://{user}:", Scalar("front", "environment", "RabbitMq__Uri"));
    }

    [Theory]
    [InlineData("front", "Front__ApiKeys__0", "BULK_API_KEY")]
    [InlineData("front", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    [InlineData("worker", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    public void TheDemoKeyAndSecret_AreTakenFromTheEnvironment_AndTheirDefaultsAreOnesTheProcessesWarnAbout(string service, string setting, string variable)
    {
        var value = Scalar(service, "environment", setting);

        Assert.StartsWith($"${{{variable}:-", value, StringComparison.Ordinal);
        Assert.True(Bulk.Broker.Hosting.DemoValues.IsDemo(value[(variable.Length + 4)..^1]), $"{value}: a default the processes do not recognise starts without a warning");
    }

    private static string Scalar(params string[] path)
    {
        YamlNode node = Services;
        foreach (var key in path)
        {
            node = ((YamlMappingNode)node)[key];
        }

        return ((YamlScalarNode)node).Value!;
    }

    private static YamlMappingNode LoadServices()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Root, "docker-compose.yml"));
        stream.Load(reader);
        return (YamlMappingNode)((YamlMappingNode)stream.Documents[0].RootNode)["services"];
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bulk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Bulk.sln not found above the test binaries.");
    }
}
