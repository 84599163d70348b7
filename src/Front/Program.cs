using Bulk.Contracts;
using Bulk.Front;
using Microsoft.Extensions.Options;

try
{
    var app = FrontApp.Create(args);
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(ConfigurationErrors.OneLine("Bulk.Front", e.Failures));
    return 2;
}
