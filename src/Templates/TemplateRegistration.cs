using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bulk.Templates;

public static class TemplateRegistration
{
    /// <summary>The <see cref="LiquidSandbox"/> with its limits from <c>Templates__*</c>, checked at start.</summary>
    public static IServiceCollection AddLiquidSandbox(this IServiceCollection services)
    {
        services.AddOptions<TemplateLimits>().BindConfiguration(TemplateLimits.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new LiquidSandbox(sp.GetRequiredService<IOptions<TemplateLimits>>().Value));
        return services;
    }
}
