using Microsoft.Extensions.Configuration;

namespace Bulk.Broker.Hosting;

/// <summary>A list setting given as one value (<c>Front__ApiKeys=key-one,key-two</c>), read as its comma-separated entries.</summary>
/// <remarks>
/// .NET binds a list from indexed keys only (<c>Front__ApiKeys__0</c>, <c>Front__ApiKeys__1</c>); a single value it drops
/// without a word, which left a Front keyless, or allowing any sender, when its operator had said otherwise.
/// </remarks>
public static class ListSettings
{
    /// <summary>What one list setting was given as.</summary>
    /// <param name="Entries">The entries of a single value, split on commas and trimmed, empty ones left out; null when it was not given as one value.</param>
    /// <param name="Given">Set in either form, even to nothing.</param>
    /// <param name="BothForms">Given as one value and as indexed keys: which one was meant cannot be told.</param>
    public sealed record Setting(IReadOnlyList<string>? Entries, bool Given, bool BothForms);

    /// <param name="key">The setting's configuration key, <c>Front:ApiKeys</c>.</param>
    public static Setting Read(IConfiguration configuration, string key)
    {
        var section = configuration.GetSection(key);
        var indexed = section.GetChildren().Any();
        var single = section.Value;
        var entries = single?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return new Setting(entries, indexed || single is not null, indexed && single is not null);
    }

    /// <summary>Puts a single value's entries in <paramref name="list"/>, which the binder left empty.</summary>
    /// <returns>The setting as given, for the checks that follow.</returns>
    public static Setting Apply(IConfiguration configuration, string key, List<string> list)
    {
        var setting = Read(configuration, key);
        if (setting is { Entries: { } entries, BothForms: false })
        {
            list.Clear();
            list.AddRange(entries);
        }

        return setting;
    }

    /// <summary>The one-line refusal of a setting given in both forms, naming the indexed one.</summary>
    /// <param name="name">The setting as an environment variable, <c>Front__ApiKeys</c>.</param>
    public static string BothFormsError(string name) =>
        $"{name} is given both as one value and as {name}__0, {name}__1…: give one form (a comma-separated value, or one indexed key per entry)";
}
