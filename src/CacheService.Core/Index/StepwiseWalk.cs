namespace CacheService.Core.Index;

/// <summary>
/// <see cref="ILayerIndex.WalkAsync"/> one call per step, for engines whose namespaces cannot
/// share a transaction (Redis: each namespace is its own cluster slot).
/// </summary>
public static class StepwiseWalk
{
    /// <summary>
    /// Walks with <see cref="ILayerIndex.LookupAndCountAsync"/> on the first namespace and plain
    /// lookups on the rest; with <paramref name="count"/> false nothing is counted (and nothing
    /// created: see <see cref="NamespaceCensus"/>).
    /// </summary>
    public static async Task<IReadOnlyList<ChainHit>> WalkAsync(
        ILayerIndex index, IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken, bool count = true)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(nextKey);
        var hits = new List<ChainHit>();
        for (Digest? key = first; key is { } current;)
        {
            var found = count ? await index.LookupAndCountAsync(namespaces[0], current, cancellationToken) : await index.LookupAsync(namespaces[0], current, cancellationToken);
            var hit = found is { } entry ? new ChainHit(entry, namespaces[0]) : null;
            foreach (var ns in namespaces.Skip(1))
            {
                if (hit is not null)
                {
                    break;
                }

                if (await index.LookupAsync(ns, current, cancellationToken) is { } fallback)
                {
                    hit = new ChainHit(fallback, ns);
                    if (count)
                    {
                        await index.RecordUsageAsync(namespaces[0], new UsageDelta(Hits: 1), cancellationToken);
                    }
                }
            }

            if (hit is null)
            {
                break;
            }

            hits.Add(hit);
            key = nextKey(hit.Entry, hit.Namespace);
        }

        return hits;
    }
}
