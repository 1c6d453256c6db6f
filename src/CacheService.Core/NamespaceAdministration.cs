using CacheService.Core.Index;
using CacheService.Core.Options;

namespace CacheService.Core;

/// <summary>What an operator asks of a namespace: its counters, dropping keys, and a consistency check.</summary>
public sealed class NamespaceAdministration(CacheBackends backends, EvictionOptions eviction)
{
    /// <summary>The counters of one namespace.</summary>
    public Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken) =>
        backends.Index.GetUsageAsync(ns, cancellationToken);

    /// <summary>Drops the given keys, or every key when <paramref name="keys"/> is null.</summary>
    public Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest>? keys, CancellationToken cancellationToken) =>
        keys is null ? backends.Index.DeleteAllAsync(ns, cancellationToken) : backends.Index.DeleteAsync(ns, keys, cancellationToken);

    /// <summary>The index's invariant checks for a namespace, plus its budget; empty when consistent.</summary>
    public async Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken)
    {
        var problems = (await backends.Index.VerifyAsync(ns, cancellationToken)).ToList();
        var usage = await backends.Index.GetUsageAsync(ns, cancellationToken);
        var budget = eviction.BudgetFor(ns);
        if (usage.StoredBytes > budget.HighWatermarkBytes)
        {
            problems.Add($"stored bytes {usage.StoredBytes} exceed the budget of {budget.HighWatermarkBytes}");
        }

        return problems;
    }
}
