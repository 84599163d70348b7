using Bulk.Contracts;
using Bulk.Worker;
using Microsoft.Extensions.Options;

try
{
    using var host = WorkerHost.Create(args);
    await host.RunAsync();
    return 0;
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(ConfigurationErrors.OneLine("Bulk.Worker", e.Failures));
    return 2;
}
