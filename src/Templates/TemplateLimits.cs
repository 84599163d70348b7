using System.ComponentModel.DataAnnotations;

namespace Bulk.Templates;

/// <summary>How much one rendering of one template may do (<c>Templates__MaxSteps</c>, …); the Front and every Worker use the same.</summary>
public sealed class TemplateLimits
{
    public const string Section = "Templates";

    /// <summary>Statements and loop iterations one rendering may run.</summary>
    [Range(100, 100_000_000, ErrorMessage = "Templates__MaxSteps must be between 100 and 100000000")]
    public int MaxSteps { get; set; } = 100_000;

    /// <summary>How deeply blocks may nest while rendering.</summary>
    [Range(1, 1000, ErrorMessage = "Templates__MaxRecursion must be between 1 and 1000")]
    public int MaxRecursion { get; set; } = 50;

    /// <summary>Characters one rendering may produce, and any one value it may build on the way (4 × Front__MaxTemplateBytes by default).</summary>
    [Range(1024, 1_000_000_000, ErrorMessage = "Templates__MaxOutputChars must be between 1024 and 1000000000")]
    public int MaxOutputChars { get; set; } = 4 * 1024 * 1024;

    /// <summary>Characters one rendering's filters and captures may build in all (a list item counts as 16), so a loop
    /// that builds a large value over and over is stopped; 4 × <see cref="MaxOutputChars"/> by default.</summary>
    [Range(1024, 1_000_000_000, ErrorMessage = "Templates__MaxAllocatedChars must be between 1024 and 1000000000")]
    public int MaxAllocatedChars { get; set; } = 16 * 1024 * 1024;

    /// <summary>Items a range such as <c>(1..n)</c>, or any array a filter builds, may hold.</summary>
    [Range(1, 100_000_000, ErrorMessage = "Templates__MaxItems must be between 1 and 100000000")]
    public int MaxItems { get; set; } = 100_000;

    /// <summary>Wall-clock time one rendering may take.</summary>
    [Range(10, 600_000, ErrorMessage = "Templates__MaxRenderMilliseconds must be between 10 and 600000")]
    public int MaxRenderMilliseconds { get; set; } = 1000;
}
