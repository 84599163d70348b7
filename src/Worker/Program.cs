using Bulk.Contracts;
using Bulk.Worker;
using Microsoft.Extensions.Options;

try
{
    using var host = WorkerHost.Create(args);
    // Settings are checked before the host starts, so a wrong one is this one line and not a logged stack trace.
    host.Services.GetRequiredService<IStartupValidator>().Validate();
    await host.RunAsync();
    return 0;
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(ConfigurationErrors.OneLine("Bulk.Worker", e.Failures));
    return 2;
}
catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
{
    // A value of the wrong type (e.g. Smtp__Security=Sometimes); the message names the setting.
    Console.Error.WriteLine($"Bulk.Worker: invalid configuration: {e.Message}");
    return 2;
}
