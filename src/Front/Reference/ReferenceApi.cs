using Scalar.AspNetCore;

namespace Bulk.Front.Reference;

/// <summary>The API's OpenAPI document at <c>/openapi/v1.json</c> and a reference page for it at <c>/docs</c>, both served by this process.</summary>
public static class ReferenceApi
{
    public const string DocumentPattern = "/openapi/{documentName}.json";
    public const string DocumentPath = "/openapi/v1.json";
    public const string PagePath = "/docs";

    public static IServiceCollection AddApiReference(this IServiceCollection services)
    {
        services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer(OpenApiDescriptions.DescribeDocumentAsync);
            o.AddOperationTransformer(OpenApiDescriptions.DescribeAccessAsync);
            o.AddSchemaTransformer(OpenApiDescriptions.DescribeSchemaAsync);
        });
        return services;
    }

    public static IEndpointRouteBuilder MapApiReference(this IEndpointRouteBuilder app)
    {
        // Public, like the page: the description says how to call the API; only the calls need a key.
        app.MapOpenApi(DocumentPattern).AllowAnonymous().ExcludeFromDescription();

        // Scalar serves its own bundled scalar.js under /docs; the fonts it would take from a CDN are left out, and so is
        // its usage telemetry, so that the page works on a network that reaches nothing but this Front.
        app.MapScalarApiReference(PagePath, o => o
                .WithTitle("Bulk API")
                .WithOpenApiRoutePattern(DocumentPattern)
                .DisableDefaultFonts()
                .DisableTelemetry())
            .AllowAnonymous()
            .ExcludeFromDescription();
        return app;
    }
}
