using System.Text.RegularExpressions;

namespace Bulk.Tests.Infrastructure;

/// <summary>Postfix's smtp-sink on loopback, dumping every mail it accepts to a file: the recipients are counted from those.</summary>
public sealed partial class SmtpSink : IAsyncDisposable
{
    private readonly ChildProcess process;
    private readonly string directory;

    private SmtpSink(ChildProcess process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <param name="faults">smtp-sink's own fault options, e.g. <c>-f mail</c> to answer MAIL FROM with a 5xx.</param>
    public static async Task<SmtpSink> StartAsync(params string[] faults)
    {
        var port = TestSmtpServer.FreePort();
        var directory = Path.Combine(Path.GetTempPath(), $"bulk-sink-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var arguments = new List<string>();
        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            // smtp-sink refuses to keep root privileges; the dump directory must be writable by the user it becomes.
            File.SetUnixFileMode(directory, (UnixFileMode)0x1FF);
            arguments.AddRange(["-u", "nobody"]);
        }

        arguments.AddRange(faults);
        arguments.AddRange(["-d", Path.Combine(directory, "%H%M%S."), $"127.0.0.1:{port}", "256"]);
        var process = ChildProcess.Start("smtp-sink", arguments);
        var sink = new SmtpSink(process, directory, port);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!Answers(port))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"smtp-sink did not start (is Debian's postfix installed?): {process.Output}");
            }

            await Task.Delay(50);
        }

        return sink;
    }

    /// <summary>The recipient of every mail received so far, one entry per mail (so duplicates show).</summary>
    public IReadOnlyList<string> Recipients()
    {
        var recipients = new List<string>();
        foreach (var file in Directory.EnumerateFiles(directory))
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (IOException)
            {
                continue; // being written
            }

            if (RcptArgs().Match(text) is { Success: true } match)
            {
                recipients.Add(match.Groups[1].Value.ToLowerInvariant());
            }
        }

        return recipients;
    }

    public async Task<IReadOnlyList<string>> WaitForDistinctAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var recipients = Recipients();
            if (recipients.Distinct().Count() >= count)
            {
                return recipients;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} distinct recipients within {timeout}, got {recipients.Distinct().Count()}.");
            }

            await Task.Delay(200);
        }
    }

    private static bool Answers(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient("127.0.0.1", port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await process.DisposeAsync();
        Directory.Delete(directory, recursive: true);
    }

    [GeneratedRegex(@"^X-Rcpt-Args: <([^>]+)>", RegexOptions.Multiline)]
    private static partial Regex RcptArgs();
}
