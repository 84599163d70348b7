using YamlDotNet.RepresentationModel;

namespace Bulk.Tests.Configuration;

/// <summary>No Docker engine runs here, so the compose file and Dockerfiles are checked by reading them.</summary>
public sealed class ComposeFileTests
{
    private static readonly string Root = FindRoot();

    private static readonly YamlMappingNode Compose = LoadCompose();

    private static readonly YamlMappingNode Services = (YamlMappingNode)Compose["services"];

    private static readonly string[] ClusterBrokers = ["rabbit1", "rabbit2", "rabbit3"];

    [Fact]
    public void ComposeRunsTheBrokerTheCatcherTheFrontAndAWorker()
    {
        // What plain `docker compose up` starts: the services in no profile.
        Assert.Equal(["front", "mailpit", "otel-dashboard", "prometheus", "rabbitmq", "worker"], ServicesIn(profile: null));
        Assert.Matches("^rabbitmq:[0-9.]+-management", Scalar("rabbitmq", "image"));
        Assert.StartsWith("axllent/mailpit", Scalar("mailpit", "image"));
    }

    [Fact]
    public void TheClusterProfile_AddsThreeBrokersAFrontAndAWorker_AndNothingElseIsInAProfile()
    {
        Assert.Equal(["front-cluster", "rabbit1", "rabbit2", "rabbit3", "worker-cluster"], ServicesIn("cluster"));
        Assert.All(Services.Children, s => Assert.True(ProfilesOf(s.Key.ToString()) is [] or ["cluster"], $"{s.Key} is in another profile"));
        // The default services never wait for a service that plain `docker compose up` does not start.
        foreach (var service in ServicesIn(profile: null))
        {
            Assert.All(DependenciesOf(service), d => Assert.Empty(ProfilesOf(d)));
        }
    }

    [Fact]
    public void EveryPublishedHostPortIsPublishedOnce_SoTheDefaultServicesAndTheClusterCanRunSideBySide()
    {
        var published = Services.Children
            .Where(s => ((YamlMappingNode)s.Value).Children.ContainsKey("ports"))
            .SelectMany(s => (YamlSequenceNode)((YamlMappingNode)s.Value)["ports"])
            .Select(p => string.Join(':', p.ToString().Split(':')[..^1]))
            .ToList();

        Assert.Equal(published.Distinct().Count(), published.Count);
    }

    [Fact]
    public void TheClusterBrokers_AreTheDefaultBrokersImage_WithDistinctHostnames_AndOneErlangCookie()
    {
        Assert.All(ClusterBrokers, b => Assert.Equal(Scalar("rabbitmq", "image"), Scalar(b, "image")));

        // A node is rabbit@<hostname>; the hostname is also the service name, which the other containers resolve.
        Assert.Equal(ClusterBrokers, ClusterBrokers.Select(b => Scalar(b, "hostname")));
        Assert.All(ClusterBrokers, b => Assert.False(EnvironmentOf(b).Children.ContainsKey("RABBITMQ_NODENAME"), $"{b} names its node otherwise"));

        var cookies = ClusterBrokers.Select(b => Scalar(b, "environment", "RABBITMQ_ERLANG_COOKIE")).ToList();
        Assert.False(string.IsNullOrWhiteSpace(cookies[0]));
        Assert.All(cookies, c => Assert.Equal(cookies[0], c));

        // The same user as the default broker, which the cluster's Front and Worker log in as.
        Assert.All(ClusterBrokers, b => Assert.Equal(Scalar("rabbitmq", "environment", "RABBITMQ_DEFAULT_USER"), Scalar(b, "environment", "RABBITMQ_DEFAULT_USER")));
        Assert.All(ClusterBrokers, b => Assert.NotNull(((YamlMappingNode)Services[b])["healthcheck"]));
    }

    [Fact]
    public void EachClusterBroker_FindsTheOthersByClassicConfigPeerDiscovery_NamingAllThree()
    {
        foreach (var broker in ClusterBrokers)
        {
            var settings = RabbitMqConfOf(broker);

            Assert.Contains(settings["cluster_formation.peer_discovery_backend"], new[] { "classic_config", "rabbit_peer_discovery_classic_config" });
            var listed = settings.Where(s => s.Key.StartsWith("cluster_formation.classic_config.nodes.", StringComparison.Ordinal)).Select(s => s.Value);
            Assert.Equal(ClusterBrokers.Select(b => $"rabbit@{Scalar(b, "hostname")}"), listed.Order());
        }
    }

    [Theory]
    [InlineData("front-cluster")]
    [InlineData("worker-cluster")]
    public void TheClusterFrontAndWorker_ListTheThreeNodes_AndWaitForAllOfThem(string service)
    {
        var endpoints = Scalar(service, "environment", "RabbitMq__Endpoints").Split(',', StringSplitOptions.TrimEntries);
        Assert.Equal(ClusterBrokers.Select(b => $"{Scalar(b, "hostname")}:5672"), endpoints.Order());

        // The URI still gives the credentials (and the vhost), those of the cluster's brokers.
        var user = Scalar("rabbit1", "environment", "RABBITMQ_DEFAULT_USER");
        Assert.StartsWith($"amqp://{user}:", Scalar(service, "environment", "RabbitMq__Uri"), StringComparison.Ordinal);
        Assert.Matches("@rabbit[123]:5672/$", Scalar(service, "environment", "RabbitMq__Uri"));

        Assert.All(ClusterBrokers, b => Assert.Equal("service_healthy", Scalar(service, "depends_on", b, "condition")));
        Assert.DoesNotContain("rabbitmq", DependenciesOf(service));
    }

    [Fact]
    public void TheClusterWorker_DeliversLikeTheDefaultOne_AndCanBeScaled()
    {
        var worker = (YamlMappingNode)Services["worker-cluster"];
        Assert.False(worker.Children.ContainsKey("container_name"), "a fixed container name prevents --scale");
        Assert.False(worker.Children.ContainsKey("ports"), "a published port prevents --scale");
        foreach (var setting in new[] { "Smtp__Host", "Smtp__Port", "Smtp__Security", "Smtp__MaxConnections" })
        {
            Assert.Equal(Scalar("worker", "environment", setting), Scalar("worker-cluster", "environment", setting));
        }

        // Unsubscribe links point at the cluster's Front.
        var frontPort = ((YamlSequenceNode)((YamlMappingNode)Services["front-cluster"])["ports"]).Single().ToString().Split(':')[^2];
        Assert.Equal($"http://127.0.0.1:{frontPort}", Scalar("worker-cluster", "environment", "Unsubscribe__BaseUrl"));
        Assert.Equal(Scalar("worker", "stop_grace_period"), Scalar("worker-cluster", "stop_grace_period"));
    }

    [Theory]
    [InlineData("front", "Bulk.Front.dll")]
    [InlineData("worker", "Bulk.Worker.dll")]
    [InlineData("front-cluster", "Bulk.Front.dll")]
    [InlineData("worker-cluster", "Bulk.Worker.dll")]
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
    [InlineData("front", "Front__AdminKeys__0", "BULK_API_KEY")]
    [InlineData("front", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    [InlineData("worker", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    [InlineData("front-cluster", "Front__AdminKeys__0", "BULK_API_KEY")]
    [InlineData("front-cluster", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    [InlineData("worker-cluster", "Unsubscribe__Secret", "BULK_UNSUBSCRIBE_SECRET")]
    public void TheDemoKeyAndSecret_AreTakenFromTheEnvironment_AndTheirDefaultsAreOnesTheProcessesWarnAbout(string service, string setting, string variable)
    {
        var value = Scalar(service, "environment", setting);

        Assert.StartsWith($"${{{variable}:-", value, StringComparison.Ordinal);
        Assert.True(Bulk.Broker.Hosting.DemoValues.IsDemo(value[(variable.Length + 4)..^1]), $"{value}: a default the processes do not recognise starts without a warning");
    }

    [Fact]
    public void TheFrontAndTheWorkers_ExportTracesToTheDashboard_AndPrometheusScrapesThemAll()
    {
        // The dashboard takes OTLP over gRPC on 18889 inside the compose network, and shows it on 18888.
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspire-dashboard:", Scalar("otel-dashboard", "image"), StringComparison.Ordinal);
        Assert.All(new[] { "front", "worker" }, s => Assert.Equal("http://otel-dashboard:18889", Scalar(s, "environment", "OTEL_EXPORTER_OTLP_ENDPOINT")));

        // The Worker's listener is on; Prometheus scrapes it on every replica (found by the service's name) and the Front's /metrics.
        var workerPort = new Uri(Scalar("worker", "environment", "Metrics__Urls")).Port;
        var prometheus = LoadYaml(Path.Combine(Root, ((YamlScalarNode)((YamlMappingNode)Compose["configs"])["prometheus"]["file"]).Value!));
        var jobs = ((YamlSequenceNode)prometheus["scrape_configs"]).Cast<YamlMappingNode>().ToDictionary(j => j["job_name"].ToString());
        Assert.Equal("front:8080", jobs["bulk-front"]["static_configs"][0]["targets"][0].ToString());
        var workers = (YamlMappingNode)jobs["bulk-worker"]["dns_sd_configs"][0];
        Assert.Equal(("worker", workerPort.ToString(System.Globalization.CultureInfo.InvariantCulture)), (workers["names"][0].ToString(), workers["port"].ToString()));
        Assert.Equal("prometheus", ((YamlSequenceNode)((YamlMappingNode)Services["prometheus"])["configs"])[0]["source"].ToString());
    }

    [Theory]
    [InlineData("front")]
    [InlineData("worker")]
    [InlineData("front-cluster")]
    [InlineData("worker-cluster")]
    public void TheFrontAndTheWorkers_HoldTheirGcHeapWithinThreeQuartersOfTheirContainersMemory(string service)
    {
        // The runtime reads DOTNET_GCHeapHardLimit as hexadecimal bytes.
        var heap = Convert.ToInt64(Scalar(service, "environment", "DOTNET_GCHeapHardLimit"), 16);
        var container = Scalar(service, "mem_limit");

        Assert.Equal("1g", container);
        Assert.Equal(768L * 1024 * 1024, heap);
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

    /// <summary>The services in <paramref name="profile"/>, or those in none when it is null, in order.</summary>
    private static IEnumerable<string> ServicesIn(string? profile) =>
        Services.Children.Keys.Select(k => k.ToString())
            .Where(s => profile is null ? ProfilesOf(s).Count == 0 : ProfilesOf(s).Contains(profile))
            .Order();

    private static IReadOnlyList<string> ProfilesOf(string service) =>
        ((YamlMappingNode)Services[service]).Children.TryGetValue("profiles", out var profiles)
            ? [.. ((YamlSequenceNode)profiles).Select(p => p.ToString())]
            : [];

    private static IEnumerable<string> DependenciesOf(string service) =>
        ((YamlMappingNode)Services[service]).Children.TryGetValue("depends_on", out var dependencies)
            ? ((YamlMappingNode)dependencies).Children.Keys.Select(k => k.ToString())
            : [];

    private static YamlMappingNode EnvironmentOf(string service) => (YamlMappingNode)((YamlMappingNode)Services[service])["environment"];

    /// <summary>The settings of the rabbitmq.conf files the service mounts from the top-level <c>configs</c>
    /// (from a file in the repository or inline content), as key = value.</summary>
    private static Dictionary<string, string> RabbitMqConfOf(string service)
    {
        var settings = new Dictionary<string, string>();
        var mounts = (YamlSequenceNode)((YamlMappingNode)Services[service])["configs"];
        foreach (YamlMappingNode mount in mounts)
        {
            var target = ((YamlScalarNode)mount["target"]).Value!;
            Assert.Matches("^/etc/rabbitmq/(rabbitmq\\.conf|conf\\.d/[^/]+\\.conf)$", target);

            var config = (YamlMappingNode)((YamlMappingNode)Compose["configs"])[((YamlScalarNode)mount["source"]).Value!];
            var text = config.Children.TryGetValue("content", out var content)
                ? ((YamlScalarNode)content).Value!
                : File.ReadAllText(Path.Combine(Root, ((YamlScalarNode)config["file"]).Value!));
            foreach (var line in text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
            {
                var equals = line.IndexOf('=', StringComparison.Ordinal);
                settings[line[..equals].Trim()] = line[(equals + 1)..].Trim();
            }
        }

        return settings;
    }

    private static YamlMappingNode LoadCompose() => LoadYaml(Path.Combine(Root, "docker-compose.yml"));

    private static YamlMappingNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
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
