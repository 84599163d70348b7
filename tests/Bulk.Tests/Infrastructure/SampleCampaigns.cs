using System.Text.Json.Nodes;

namespace Bulk.Tests.Infrastructure;

/// <summary>Builds campaign bodies for the tests.</summary>
public static class SampleCampaigns
{
    public static string Address(int i) => $"user{i:D5}@example.org";

    /// <summary>A campaign to <paramref name="count"/> recipients, each with its own name and number.</summary>
    public static string Personal(int count)
    {
        var recipients = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            recipients.Add(new JsonObject
            {
                ["email"] = Address(i),
                ["data"] = new JsonObject { ["name"] = $"Name{i}", ["n"] = i },
            });
        }

        return new JsonObject
        {
            ["from"] = "News <news@example.com>",
            ["subject"] = "Hello {{ name }}",
            ["text"] = "Hi {{ name }}, you are number {{ n }}.",
            ["html"] = "<p>Hi {{ name }}, you are number {{ n }}.</p>",
            ["recipients"] = recipients,
        }.ToJsonString();
    }
}
