using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bulk.Broker.Hosting;

/// <summary>How the Front and the Worker run: settings checked first, a wrong one reported as one line, exit code 2.</summary>
public static class ProcessRunner
{
    public static async Task<int> RunAsync(string process, Func<IHost> build)
    {
        try
        {
            using var host = build();
            // Checked before the host starts, so a wrong setting is one line and not a logged stack trace.
            host.Services.GetRequiredService<IStartupValidator>().Validate();
            await host.RunAsync();
            return 0;
        }
        catch (OptionsValidationException e)
        {
            Console.Error.WriteLine(ConfigurationErrors.OneLine(process, e.Failures));
            return 2;
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
        {
            // Several option sections are wrong at once: still one line, naming every setting.
            Console.Error.WriteLine(ConfigurationErrors.OneLine(process, e.InnerExceptions.SelectMany(i => ((OptionsValidationException)i).Failures)));
            return 2;
        }
        catch (InvalidOperationException e) when (e.InnerException is System.Net.HttpListenerException listener)
        {
            // The Worker's metrics listener (Metrics__Urls) could not take its address, e.g. a port already in use.
            Console.Error.WriteLine($"{process}: Metrics__Urls: cannot listen: {listener.Message}");
            return 2;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            // A value of the wrong type (e.g. Smtp__Security=Sometimes); the message names the setting.
            Console.Error.WriteLine($"{process}: invalid configuration: {e.Message}");
            return 2;
        }
    }
}
