using System.Text;

namespace Bulk.Tests.Infrastructure;

/// <summary>A request body of JSON text exactly as given, sent as <c>application/json</c>.</summary>
public static class JsonBody
{
    public static StringContent Of(string json) => new(json, Encoding.UTF8, "application/json");
}
