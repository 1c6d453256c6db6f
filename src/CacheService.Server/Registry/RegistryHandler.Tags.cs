using CacheService.Core.Access;

namespace CacheService.Server.Registry;

/// <summary>
/// Listings: a repository's tags, and the catalog of repositories (those the caller may read),
/// each sorted, <c>n</c> at a time after <c>last</c>, with a <c>Link</c> header to the next page.
/// </summary>
internal sealed partial class RegistryHandler
{
    // The largest page: without n, or with a larger one, a client gets this many and a Link to the rest.
    private const int MaxTagPage = 10_000;

    private async Task TagsAsync(HttpContext http, string ns)
    {
        var last = http.Request.Query["last"].ToString();
        var n = int.TryParse(http.Request.Query["n"], out var asked) && asked >= 0 ? Math.Min(asked, MaxTagPage) : MaxTagPage;
        var page = (await registry.ListTagsAsync(ns, last.Length == 0 ? null : last, n + 1, http.RequestAborted)).ToList();
        if (page.Count > n)
        {
            page = page[..n];
            if (n > 0)
            {
                http.Response.Headers.Link = $"</v2/{ns}/tags/list?n={n}&last={Uri.EscapeDataString(page[^1])}>; rel=\"next\"";
            }
        }

        await http.Response.WriteAsJsonAsync(new { name = ns, tags = page });
    }

    private async Task CatalogAsync(HttpContext http, Caller caller)
    {
        caller.RequireAnyScope();
        var last = http.Request.Query["last"].ToString();
        var n = int.TryParse(http.Request.Query["n"], out var asked) && asked >= 0 ? Math.Min(asked, MaxTagPage) : MaxTagPage;
        var page = (await registry.ListRepositoriesAsync(http.RequestAborted))
            .Where(ns => string.CompareOrdinal(ns, last) > 0 && caller.Allows(AccessLevel.Read, ns))
            .Take(n + 1)
            .ToList();
        if (page.Count > n)
        {
            page = page[..n];
            if (n > 0)
            {
                http.Response.Headers.Link = $"</v2/_catalog?n={n}&last={Uri.EscapeDataString(page[^1])}>; rel=\"next\"";
            }
        }

        await http.Response.WriteAsJsonAsync(new { repositories = page });
    }
}
