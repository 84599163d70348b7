using Bulk.Broker;
using Bulk.Broker.Hosting;
using Bulk.Broker.Suppressions;
using Bulk.Front;
using Bulk.Tests.Infrastructure;
using Bulk.Templates;
using Bulk.Worker;
using Bulk.Worker.Delivery;
using Bulk.Worker.Rendering;
using Bulk.Worker.Smtp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Configuration;

/// <summary>A wrong or missing setting stops a process at start, with a line that names the setting.</summary>
public sealed class StartupConfigurationTests
{
    /// <summary>Settings every Worker needs, so that each test sees only the error it is about.</summary>
    private static readonly string[] Unsubscribe =
        [$"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", "--Unsubscribe:BaseUrl=https://mail.example.com"];

    [Fact]
    public async Task AWorkerWithoutSmtpHostOrWithABadPort_DoesNotStart_AndSaysWhichSettings()
    {
        using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Port=70000"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());
        var line = ConfigurationErrors.OneLine("Bulk.Worker", e.Failures);

        Assert.DoesNotContain('\n', line);
        Assert.Contains("Smtp__Host is required", line);
        Assert.Contains("Smtp__Port must be between 1 and 65535", line);
    }

    [Theory]
    [InlineData("Smtp:Security", "Sometimes", "Smtp:Security")]
    [InlineData("Smtp:MaxConnections", "0", "Smtp__MaxConnections")]
    [InlineData("Delivery:RecipientsPerJob", "0", "Delivery__RecipientsPerJob")]
    [InlineData("RabbitMq:Uri", "http://example.com", "RabbitMq__Uri")]
    [InlineData("Templates:MaxSteps", "5", "Templates__MaxSteps must be between 100 and 100000000")]
    [InlineData("Templates:MaxRenderMilliseconds", "0", "Templates__MaxRenderMilliseconds")]
    [InlineData("Delivery:HoldAfterRefusals", "1", "Delivery__HoldAfterRefusals must be between 2 and 1000")]
    [InlineData("Delivery:HoldBreakSeconds", "0", "Delivery__HoldBreakSeconds")]
    [InlineData("RabbitMq:Endpoints", "rabbit1:5672,rabbit2", "RabbitMq__Endpoints must be a comma-separated list of host:port")]
    [InlineData("RabbitMq:Endpoints", "rabbit1:5672,:5673", "':5673' is not host:port")]
    [InlineData("RabbitMq:Endpoints", "rabbit1:99999", "RabbitMq__Endpoints")]
    [InlineData("RabbitMq:Endpoints", " , ", "names no node")]
    [InlineData("RabbitMq:Replicas", "0", "RabbitMq__Replicas must be between 1 and 9")]
    [InlineData("RabbitMq:MaxMessageBytes", "100", "RabbitMq__MaxMessageBytes must be between 4096 and 536870912")]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT must be an absolute http or https URL")]
    public async Task AWorkerWithABadSetting_DoesNotStart(string key, string value, string named)
    {
        using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", $"--{key}={value}"]);

        var e = await Record.ExceptionAsync(() => worker.StartAsync());

        Assert.NotNull(e);
        var message = e is OptionsValidationException ov ? ConfigurationErrors.OneLine("Bulk.Worker", ov.Failures) : e.Message;
        Assert.Contains(named, message);
    }

    private const string Secret = BulkSystem.UnsubscribeSecret;

    /// <summary>One setting out of its range in each section, with every other setting valid.</summary>
    public static TheoryData<object, string> SettingsOutOfRange => new()
    {
        { new SmtpOptions { Host = "h", Security = (SmtpSecurity)7 }, "Smtp__Security must be None, StartTls, SslOnConnect or Auto" },
        { new SmtpOptions { Host = "h", TimeoutSeconds = 0 }, "Smtp__TimeoutSeconds must be between 1 and 600" },
        { new SmtpOptions { Host = "h", MaxMessagesPerSecond = -1 }, "Smtp__MaxMessagesPerSecond must be 0 (no limit) or a positive rate" },
        { new SmtpOptions { Host = "h", GlobalMaxMessagesPerSecond = 100_001 }, "Smtp__GlobalMaxMessagesPerSecond must be 0 (no limit) or a rate up to 100000" },
        { new DeliveryOptions { Prefetch = 0 }, "Delivery__Prefetch must be between 1 and 1000" },
        { new DeliveryOptions { ImmediateRetries = 21 }, "Delivery__ImmediateRetries must be between 0 and 20" },
        { new DeliveryOptions { RenderSliceMilliseconds = 99 }, "Delivery__RenderSliceMilliseconds must be between 100 and 600000" },
        { new TemplateLimits { MaxAllocatedChars = 1023 }, "Templates__MaxAllocatedChars must be between 1024 and 1000000000" },
        { new DeliveryOptions { RetryTiers = "30s,soon" }, "Delivery__RetryTiers must be up to 20 delays such as 30s,5m,30m,2h (an empty list dead-letters at once)" },
        { new FrontOptions { MaxBodyBytes = 1023 }, "Front__MaxBodyBytes must be between 1024 and 1073741824" },
        { new FrontOptions { MaxBodyBytes = 1024L * 1024 * 1024 + 1 }, "Front__MaxBodyBytes must be between 1024 and 1073741824" },
        { new FrontOptions { MaxIntakeMemoryBytes = 1024 * 1024 - 1 }, "Front__MaxIntakeMemoryBytes must be between 1048576 and 1099511627776" },
        { new FrontOptions { CampaignsPerMinute = -1 }, "Front__CampaignsPerMinute must be 0 (no limit) or up to 1000000" },
        { new FrontOptions { BodyDeadlineSeconds = 0 }, "Front__BodyDeadlineSeconds must be between 1 and 3600" },
        { new FrontOptions { MaxPostsInFlightPerKey = -1 }, "Front__MaxPostsInFlightPerKey must be 0 (no limit) or up to 100000" },
        { new RabbitMqOptions { Uri = "amqp://h/", Prefix = "my queues" }, "RabbitMq__Prefix must be letters, digits, '-', '_' or '.' (default: bulk)" },
        { new RabbitMqOptions { Uri = "amqp://h/", OutcomesMaxAge = "7 days" }, "RabbitMq__OutcomesMaxAge must be a number and a unit (Y, M, D, h, m, s), e.g. 7D" },
        { new RabbitMqOptions { Uri = "amqp://h/", OutcomesMaxBytes = 999_999 }, "RabbitMq__OutcomesMaxBytes must be at least 1000000" },
        { new UnsubscribeOptions { Secret = "too short" }, "Unsubscribe__Secret is required: at least 32 characters, the same for the Front and every Worker (it signs unsubscribe links)" },
        { new UnsubscribeOptions { Secret = Secret, Mailto = "a@b@example.com" }, "Unsubscribe__Mailto must be a plain address, e.g. unsubscribe@example.com" },
    };

    [Theory]
    [MemberData(nameof(SettingsOutOfRange))]
    public void ASettingOutOfItsRange_IsRefusedWithTheOneLineThatNamesIt(object options, string expected)
    {
        var result = new DataAnnotationValidateOptions<object>(Options.DefaultName).Validate(Options.DefaultName, options);

        Assert.True(result.Failed);
        Assert.Equal($"Bulk.Test: invalid configuration: {expected}", ConfigurationErrors.OneLine("Bulk.Test", result.Failures!));
    }

    [Fact]
    public void EverySectionsDefaults_AreValid_OnceTheRequiredSettingsAreGiven()
    {
        object[] defaults = [new SmtpOptions { Host = "h" }, new DeliveryOptions(), new FrontOptions(), new RabbitMqOptions { Uri = "amqp://h/" },
            new UnsubscribeOptions { Secret = Secret }, new DkimOptions(), new TemplateLimits()];

        Assert.All(defaults, options => Assert.True(
            new DataAnnotationValidateOptions<object>(Options.DefaultName).Validate(Options.DefaultName, options).Succeeded, options.GetType().Name));
    }

    [Theory]
    [InlineData("selector only", "Dkim__Domain, Dkim__Selector and Dkim__PrivateKeyFile are given together or not at all")]
    [InlineData("no key file", "Dkim__Domain, Dkim__Selector and Dkim__PrivateKeyFile are given together or not at all")]
    [InlineData("missing key file", "Dkim__PrivateKeyFile '/nonexistent/bulk-dkim.pem' does not exist")]
    [InlineData("unreadable key file", "Dkim__PrivateKeyFile '/' cannot be read")]
    [InlineData("public key", "holds no unencrypted RSA private key in PEM")]
    [InlineData("not a key", "holds no unencrypted RSA private key in PEM")]
    [InlineData("short key", "holds a 512-bit RSA key; receivers ignore DKIM keys under 1024 bits")]
    [InlineData("bad domain", "Dkim__Domain must be a domain name")]
    public async Task AWorkerWithIncompleteOrUnusableDkimSettings_DoesNotStart_AndSaysWhyInOneLine(string setup, string expected)
    {
        var file = Path.Combine(Path.GetTempPath(), $"bulk-dkim-{Guid.NewGuid():N}.pem");
        using var rsa = System.Security.Cryptography.RSA.Create(setup == "short key" ? 512 : 2048);
        File.WriteAllText(file, setup switch
        {
            "public key" => rsa.ExportSubjectPublicKeyInfoPem(),
            "not a key" => "not a PEM file",
            _ => rsa.ExportRSAPrivateKeyPem(),
        });
        string[] dkim = setup switch
        {
            "selector only" => ["--Dkim:Selector=bulk"],
            "no key file" => ["--Dkim:Domain=example.com", "--Dkim:Selector=bulk"],
            "missing key file" => ["--Dkim:Domain=example.com", "--Dkim:Selector=bulk", "--Dkim:PrivateKeyFile=/nonexistent/bulk-dkim.pem"],
            "unreadable key file" => ["--Dkim:Domain=example.com", "--Dkim:Selector=bulk", "--Dkim:PrivateKeyFile=/"],
            "bad domain" => ["--Dkim:Domain=example.com; x=1", "--Dkim:Selector=bulk", $"--Dkim:PrivateKeyFile={file}"],
            _ => ["--Dkim:Domain=example.com", "--Dkim:Selector=bulk", $"--Dkim:PrivateKeyFile={file}"],
        };

        try
        {
            using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", .. dkim]);

            var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());
            var line = ConfigurationErrors.OneLine("Bulk.Worker", e.Failures);

            Assert.DoesNotContain('\n', line);
            Assert.Contains(expected, line);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task AWorkerProcessWhoseDkimKeyFileIsMissing_PrintsOneLine_AndExitsWith2()
    {
        await using var worker = ChildProcess.Start("dotnet", [Repository.WorkerAssembly, .. Unsubscribe,
            "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1",
            "--Dkim:Domain=example.com", "--Dkim:Selector=bulk", "--Dkim:PrivateKeyFile=/nonexistent/bulk-dkim.pem"]);

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        var line = Assert.Single(worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("Bulk.Worker: invalid configuration: Dkim__PrivateKeyFile '/nonexistent/bulk-dkim.pem' does not exist", line);
    }

    [Fact]
    public async Task AWorkerProcessWithSeveralSectionsWrong_ExitsWithCode2_AndOneLineNamingEach()
    {
        await using var worker = ChildProcess.Start("dotnet",
            [Repository.WorkerAssembly, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Unsubscribe:Secret=", "--Smtp:Host="]);

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        var line = Assert.Single(worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("Bulk.Worker: invalid configuration: ", line);
        Assert.Contains("Smtp__Host is required", line);
        Assert.Contains("Unsubscribe__Secret is required", line);
        Assert.Contains("Unsubscribe__BaseUrl is required", line);
    }

    [Fact]
    public async Task AWorkerWithACaFileThatDoesNotExist_DoesNotStart_AndSaysSoInOneLine()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"bulk-no-such-ca-{Guid.NewGuid():N}.pem");
        using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", "--Smtp:Security=StartTls", $"--Smtp:CaFile={missing}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());
        var line = ConfigurationErrors.OneLine("Bulk.Worker", e.Failures);

        Assert.DoesNotContain('\n', line);
        Assert.Equal($"Bulk.Worker: invalid configuration: Smtp__CaFile {missing} does not exist", line);
    }

    [Fact]
    public async Task AWorkerWithACaFileHoldingNoCertificate_DoesNotStart()
    {
        var empty = Path.Combine(Path.GetTempPath(), $"bulk-empty-ca-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(empty, "not a certificate\n");
        try
        {
            using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", "--Smtp:Security=StartTls", $"--Smtp:CaFile={empty}"]);

            var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());

            Assert.Contains($"Smtp__CaFile {empty} holds no PEM certificate", ConfigurationErrors.OneLine("Bulk.Worker", e.Failures));
        }
        finally
        {
            File.Delete(empty);
        }
    }

    [Fact]
    public async Task AWorkerWithACaFileButSecurityNone_DoesNotStart_RatherThanIgnoreTheCaFile()
    {
        using var certificates = new TestCertificates();
        using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", "--Smtp:Security=None", $"--Smtp:CaFile={certificates.CaFile}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => worker.StartAsync());

        Assert.Equal("Bulk.Worker: invalid configuration: Smtp__CaFile is set but Smtp__Security=None never uses TLS: set StartTls, SslOnConnect or Auto",
            ConfigurationErrors.OneLine("Bulk.Worker", e.Failures));
    }

    [Theory]
    [InlineData(null, null, 25, SmtpSecurity.Auto)]
    [InlineData(null, "bulk", 25, SmtpSecurity.StartTls)]
    [InlineData(null, "bulk", 587, SmtpSecurity.StartTls)]
    [InlineData(null, "bulk", 465, SmtpSecurity.SslOnConnect)]
    [InlineData(null, null, 465, SmtpSecurity.Auto)]
    [InlineData(SmtpSecurity.None, "bulk", 25, SmtpSecurity.None)]
    [InlineData(SmtpSecurity.Auto, "bulk", 25, SmtpSecurity.Auto)]
    [InlineData(SmtpSecurity.StartTls, null, 25, SmtpSecurity.StartTls)]
    public void TheSmtpSecurityInEffect_RequiresTlsWhenCredentialsAreSet_UnlessSmtpSecuritySaysOtherwise(
        SmtpSecurity? configured, string? username, int port, SmtpSecurity expected)
    {
        var smtp = new SmtpOptions { Security = configured, Username = username, Password = username is null ? null : "s3cret", Port = port };

        Assert.Equal(expected, smtp.SecurityInEffect);
    }

    [Theory]
    [InlineData("", "SMTP relay 127.0.0.1:25: security Auto (the default without Smtp__Username: STARTTLS when the relay offers it)", null)]
    [InlineData("--Smtp:Username=bulk", "SMTP relay 127.0.0.1:25: security StartTls (the default with Smtp__Username: the password never goes out in plain text)", null)]
    [InlineData("--Smtp:Security=None", "SMTP relay 127.0.0.1:25: security None (set by Smtp__Security)", null)]
    [InlineData("--Smtp:Username=bulk --Smtp:Security=Auto", "SMTP relay 127.0.0.1:25: security Auto (set by Smtp__Security)",
        "Smtp__Security=Auto with Smtp__Username: the password can go to 127.0.0.1:25 in plain text")]
    public async Task AWorkerSaysAtStartWhichSmtpSecurityItUses_AndWarnsWhenThePasswordCanGoInPlainText(string settings, string line, string? warning)
    {
        using var logs = new CapturedLogs();
        string[] extra = [.. settings.Split(' ', StringSplitOptions.RemoveEmptyEntries), .. settings.Contains("Username", StringComparison.Ordinal) ? ["--Smtp:Password=s3cret"] : Array.Empty<string>()];
        using var worker = WorkerHost.Create([.. Unsubscribe, .. QuietWarnings, "--Logging:LogLevel:Bulk.Worker.Smtp=Information", "--Smtp:Host=127.0.0.1", .. extra]);
        worker.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);

        await worker.StartAsync();
        await worker.StopAsync();

        var notices = logs.Entries.Where(e => e.Category == typeof(SmtpSecurityNotice).FullName).ToList();
        Assert.Equal(line, Assert.Single(notices, e => e.Level == LogLevel.Information).Message);
        Assert.Equal(warning, notices.SingleOrDefault(e => e.Level == LogLevel.Warning)?.Message);
    }

    /// <summary>The defaults docker-compose.yml gives BULK_API_KEY and BULK_UNSUBSCRIBE_SECRET.</summary>
    private const string DemoKey = "demo-key-change-me-0123456789";
    private const string DemoSecret = "demo-secret-change-me-0123456789abcdef";

    /// <summary>Warnings only, to the captured log and not to the console; no broker is needed to start.</summary>
    private static readonly string[] QuietWarnings =
        ["--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Logging:LogLevel:Default=Warning", "--Logging:Console:LogLevel:Default=None"];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AFrontWithTheComposeFilesDemoKeyAndSecret_SaysAtStartToSetThem(bool demo)
    {
        using var logs = new CapturedLogs();
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", .. QuietWarnings,
            $"--Front:ApiKeys:0={(demo ? DemoKey : "key-a-0123456789abcdef")}", $"--Unsubscribe:Secret={(demo ? DemoSecret : BulkSystem.UnsubscribeSecret)}"]);
        front.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);

        await front.StartAsync();
        await front.StopAsync();

        string[] expected =
        [
            "Front__ApiKeys__0 is the compose file's demo value, which anyone can read in the repository; set BULK_API_KEY",
            "Unsubscribe__Secret is the compose file's demo value, which anyone can read in the repository; set BULK_UNSUBSCRIBE_SECRET",
        ];
        Assert.Equal(demo ? expected : [], DemoWarnings(logs).Order());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AWorkerWithTheComposeFilesDemoSecret_SaysAtStartToSetIt(bool demo)
    {
        using var logs = new CapturedLogs();
        using var worker = WorkerHost.Create([.. QuietWarnings, "--Smtp:Host=127.0.0.1", "--Unsubscribe:BaseUrl=https://mail.example.com",
            $"--Unsubscribe:Secret={(demo ? DemoSecret : BulkSystem.UnsubscribeSecret)}"]);
        worker.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);

        await worker.StartAsync();
        await worker.StopAsync();

        Assert.Equal(demo ? ["Unsubscribe__Secret is the compose file's demo value, which anyone can read in the repository; set BULK_UNSUBSCRIBE_SECRET"] : [],
            DemoWarnings(logs));
    }

    private static IEnumerable<string> DemoWarnings(CapturedLogs logs) =>
        logs.Entries.Where(e => e.Level == LogLevel.Warning && e.Message.Contains("demo value", StringComparison.Ordinal)).Select(e => e.Message);

    [Theory]
    [InlineData("Front__ApiKeys", "key-one-0123456789abcdef,key-two-0123456789abcdef")]
    [InlineData("Front__AdminKeys", "admin-one-0123456789abcdef")]
    [InlineData("Front__AllowedSenders", "news@example.com")]
    public async Task AListSettingGivenBothAsOneValueAndIndexed_StopsTheFrontProcessWithCode2_AndOneLineNamingTheIndexedForm(string name, string value)
    {
        await using var front = ChildProcess.Start("dotnet", [Repository.FrontAssembly, "--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}"],
            new Dictionary<string, string> { [name] = value, [$"{name}__0"] = name.EndsWith("Senders", StringComparison.Ordinal) ? "@example.org" : "key-zero-0123456789abcdef" });

        await front.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, front.ExitCode);
        var line = Assert.Single(front.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"Bulk.Front: invalid configuration: {name} is given both as one value and as {name}__0, {name}__1…: " +
            "give one form (a comma-separated value, or one indexed key per entry)", line);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" , ")]
    public async Task AnAllowedSendersListGivenButNamingNoSender_StopsTheFront_RatherThanAllowAnySender(string value)
    {
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", $"--Front:AllowedSenders={value}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        var line = ConfigurationErrors.OneLine("Bulk.Front", e.Failures);
        Assert.DoesNotContain('\n', line);
        Assert.Contains("Front__AllowedSenders is set but names no sender", line);
    }

    [Fact]
    public async Task AFrontSaysAtStartWhichSendersAreAllowed_OrThatAnySenderIs()
    {
        string[] Senders(CapturedLogs logs) =>
            [.. logs.Entries.Where(e => e.Category == typeof(Bulk.Front.Access.AllowedSenders).FullName).Select(e => e.Message)];
        using var restricted = new CapturedLogs();
        using var open = new CapturedLogs();
        foreach (var (logs, settings) in new[] { (restricted, new[] { "--Front:AllowedSenders=news@example.com, @example.org" }), (open, Array.Empty<string>()) })
        {
            await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/",
                $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}", "--Logging:Console:LogLevel:Default=None", .. settings]);
            front.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
            await front.StartAsync();
            await front.StopAsync();
        }

        Assert.Equal(["Campaigns may be sent only from news@example.com, @example.org (Front__AllowedSenders)"], Senders(restricted));
        Assert.Equal(["No allowed senders configured (Front__AllowedSenders): campaigns may be sent from any address"], Senders(open));
    }

    [Fact]
    public async Task AFrontWithoutABroker_DoesNotStart_AndNamesRabbitMqUri()
    {
        // Empty on the command line overrides any RabbitMq__Uri in the environment.
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri="]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        Assert.Contains("RabbitMq__Uri is required", ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    }

    [Fact]
    public async Task AFrontWithAnAbsurdRecipientLimit_DoesNotStart()
    {
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Front:MaxRecipients=0",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        Assert.Contains("Front__MaxRecipients", ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    }

    [Fact]
    public async Task AFrontWithATemplateLimitOutOfRange_DoesNotStart()
    {
        await using var front = FrontApp.Create(["--urls=http://127.0.0.1:0", "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Templates:MaxOutputChars=10",
            $"--Unsubscribe:Secret={BulkSystem.UnsubscribeSecret}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        Assert.Contains("Templates__MaxOutputChars must be between 1024 and 1000000000", ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    }
}
