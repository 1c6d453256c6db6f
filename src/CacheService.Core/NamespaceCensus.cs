using System.Collections.Concurrent;
using CacheService.Core.Observation;

namespace CacheService.Core;

/// <summary>
/// How many namespaces the index holds, against <c>CacheService:Limits:MaxNamespaces</c>. Anyone may
/// name any namespace, and a counted lookup or a first write creates its counters in the index:
/// past the limit, lookups in a namespace the index does not hold are answered without counting
/// (nothing is created), and writes that would create one are refused (RESOURCE_EXHAUSTED).
/// </summary>
/// <remarks>
/// The census is the list the namespace sampler last read from the shared index, plus the
/// namespaces this process has let in since. Another replica's new namespaces are seen at the
/// next sample, so the index can pass the limit by what the replicas let in during one interval.
/// </remarks>
public sealed class NamespaceCensus(int maxNamespaces, ICacheObserver observer)
{
    private readonly ConcurrentDictionary<string, byte> _admitted = new(StringComparer.Ordinal);
    private volatile HashSet<string> _sampled = new(StringComparer.Ordinal);

    /// <summary>A census without a limit (tools, tests).</summary>
    public static NamespaceCensus Unlimited { get; } = new(int.MaxValue, NullCacheObserver.Instance);

    /// <summary>Namespaces counted now.</summary>
    public int Count => _sampled.Count + _admitted.Count;

    /// <summary>Replaces the census with the index's list of namespaces.</summary>
    public void SetSampled(IEnumerable<string> namespaces)
    {
        _sampled = new HashSet<string>(namespaces, StringComparer.Ordinal);
        _admitted.Clear();
    }

    /// <summary>True when <paramref name="ns"/> is held or there is room for it (which it then takes).</summary>
    public bool TryAdmit(string ns)
    {
        if (_sampled.Contains(ns) || _admitted.ContainsKey(ns))
        {
            return true;
        }

        if (Count >= maxNamespaces)
        {
            return false;
        }

        _admitted.TryAdd(ns, 0);
        return true;
    }

    /// <summary>Lets a write into <paramref name="ns"/> or throws <see cref="QuotaExceededException"/>.</summary>
    public void AdmitWrite(string ns)
    {
        if (!TryAdmit(ns))
        {
            observer.Refused(Refusal.NamespaceCount);
            throw new QuotaExceededException($"the cache holds its limit of {maxNamespaces} namespaces (CacheService:Limits:MaxNamespaces); {ns} would be a new one");
        }
    }
}
