using System.Globalization;

namespace Bulk.Tests.Infrastructure;

/// <summary>A child process's resident memory, from <c>/proc/{pid}/status</c> (Linux).</summary>
public static class ProcessMemory
{
    /// <summary>Resident memory now.</summary>
    public static long Resident(int pid) => Read(pid, "VmRSS");

    /// <summary>The highest resident memory since the start, or since <see cref="ResetPeak"/>.</summary>
    public static long Peak(int pid) => Read(pid, "VmHWM");

    /// <summary>Sets VmHWM back to the current RSS (Linux 4.0+); false where the kernel does not let the test.</summary>
    public static bool ResetPeak(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static long Mb(long bytes) => bytes / (1024 * 1024);

    private static long Read(int pid, string field) =>
        1024 * long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}
