using Bulk.Contracts;
using Bulk.Front;
using Bulk.Tests.Infrastructure;
using Bulk.Worker;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bulk.Tests.Configuration;

/// <summary>A wrong or missing setting stops a process at start, with a line that names the setting.</summary>
public sealed class StartupConfigurationTests
{
    /// <summary>Settings every Worker needs, so that each test sees only the error it is about.</summary>
    private static readonly string[] Unsubscribe =
        [$"--Unsubscribe:Secret={Bulk.Tests.Infrastructure.BulkSystem.UnsubscribeSecret}", "--Unsubscribe:BaseUrl=https://mail.example.com"];

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
    public async Task AWorkerWithABadSetting_DoesNotStart(string key, string value, string named)
    {
        using var worker = WorkerHost.Create([.. Unsubscribe, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Smtp:Host=127.0.0.1", $"--{key}={value}"]);

        var e = await Record.ExceptionAsync(() => worker.StartAsync());

        Assert.NotNull(e);
        var message = e is OptionsValidationException ov ? ConfigurationErrors.OneLine("Bulk.Worker", ov.Failures) : e.Message;
        Assert.Contains(named, message);
    }

    [Fact]
    public async Task AWorkerProcessWithSeveralSectionsWrong_ExitsWithCode2_AndOneLineNamingEach()
    {
        await using var worker = Bulk.Tests.Infrastructure.ChildProcess.Start("dotnet",
            [Bulk.Tests.Infrastructure.Repository.WorkerAssembly, "--RabbitMq:Uri=amqp://127.0.0.1:1/", "--Unsubscribe:Secret=", "--Smtp:Host="]);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!worker.HasExited && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.True(worker.HasExited, worker.Output);
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
            $"--Unsubscribe:Secret={Bulk.Tests.Infrastructure.BulkSystem.UnsubscribeSecret}"]);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => front.StartAsync());

        Assert.Contains("Front__MaxRecipients", ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    }
}
