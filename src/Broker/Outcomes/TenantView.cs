namespace Bulk.Broker.Outcomes;

/// <summary>Whose campaigns a caller sees: every campaign (an admin key, or every caller of a Front without keys), or one tenant's.</summary>
/// <remarks>
/// A campaign with no tenant (posted while the Front had no keys, or recorded before tenants were) belongs to nobody's
/// key, so only a view of everything sees it: an ordinary key never learns of campaigns it cannot prove are its own.
/// </remarks>
public sealed class TenantView
{
    private readonly string? tenant;

    private TenantView(string? tenant) => this.tenant = tenant;

    /// <summary>Sees every campaign.</summary>
    public static TenantView Everyone { get; } = new(null);

    /// <summary>Sees the campaigns of <paramref name="tenant"/> only; an empty tenant sees none.</summary>
    public static TenantView Of(string tenant) => new(tenant ?? "");

    public bool SeesAll => tenant is null;

    /// <summary>The one tenant seen; null when every one is.</summary>
    public string? Tenant => tenant;

    public bool Sees(string? campaignTenant) =>
        tenant is null || (tenant.Length > 0 && string.Equals(tenant, campaignTenant, StringComparison.Ordinal));
}
