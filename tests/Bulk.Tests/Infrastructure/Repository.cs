namespace Bulk.Tests.Infrastructure;

/// <summary>Where the repository and the build the tests run from are.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>Debug or Release: the configuration these tests were built in, and so the Worker next to them.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string WorkerAssembly => Path.Combine(Root, "src", "Worker", "bin", Configuration, "net10.0", "Bulk.Worker.dll");

    public static string FrontAssembly => Path.Combine(Root, "src", "Front", "bin", Configuration, "net10.0", "Bulk.Front.dll");

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
