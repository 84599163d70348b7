using Bulk.Contracts;
using Bulk.Front;
using Microsoft.Extensions.Options;

try
{
    var app = FrontApp.Create(args);
    // Settings are checked before the host starts, so a wrong one is this one line and not a logged stack trace.
    app.Services.GetRequiredService<IStartupValidator>().Validate();
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    return 2;
}
catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
{
    // A value of the wrong type (e.g. Smtp__Security=Sometimes); the message names the setting.
    Console.Error.WriteLine($"Bulk.Front: invalid configuration: {e.Message}");
    return 2;
}
