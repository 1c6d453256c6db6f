using CacheService.Core.Observation;
using CacheService.Core.Options;

namespace CacheService.Core.Transfers;

/// <summary>
/// The hard limits on what uploads may store, checked before any byte is written: an upload may
/// not be larger than its namespace's whole budget (no commit could keep it), may not take the
/// stored total past <see cref="LimitsOptions.StorageCeilingBytes"/>, and may not leave the data
/// directory's disk with less than <see cref="LimitsOptions.MinFreeDiskBytes"/> free. A refusal
/// is a <see cref="QuotaExceededException"/> (RESOURCE_EXHAUSTED) before anything is stored, and
/// is counted by the observer.
/// </summary>
/// <remarks>
/// The stored total is the sum of the namespaces' stored bytes as last sampled from the shared
/// index (<see cref="SetStoredBytes"/>), plus what this process stored since and what its uploads
/// in flight have reserved: a replica does not see the other replicas' uploads of the last
/// sample interval, so the ceiling may be passed by that much, never more.
/// </remarks>
public sealed class StorageGuard(LimitsOptions limits, EvictionOptions eviction, ICacheObserver observer, Func<long?> freeDiskBytes)
{
    private long _sampled;
    private long _storedSinceSample;
    private long _reserved;

    /// <summary>The largest upload namespace <paramref name="ns"/> can take: the layer limit or its budget, whichever is smaller.</summary>
    public long MaxUploadBytes(string ns) => Math.Min(limits.MaxLayerBytes, eviction.BudgetFor(ns).HighWatermarkBytes);

    /// <summary>Records the stored total read from the index (every namespace's stored bytes).</summary>
    public void SetStoredBytes(long total)
    {
        Interlocked.Exchange(ref _sampled, total);
        Interlocked.Exchange(ref _storedSinceSample, 0);
    }

    /// <summary>
    /// Reserves room for <paramref name="bytes"/> about to be written into <paramref name="ns"/>,
    /// or throws <see cref="QuotaExceededException"/>. Dispose the reservation when the write
    /// ends; <see cref="Reservation.Stored"/> first when the bytes were kept.
    /// </summary>
    public Reservation Reserve(string ns, long bytes)
    {
        if (bytes > eviction.BudgetFor(ns).HighWatermarkBytes)
        {
            Refuse(Refusal.NamespaceBudget, $"{bytes} bytes exceed the whole budget of namespace {ns} ({eviction.BudgetFor(ns).HighWatermarkBytes} bytes)");
        }

        var reserved = Interlocked.Add(ref _reserved, bytes);
        try
        {
            var total = Interlocked.Read(ref _sampled) + Interlocked.Read(ref _storedSinceSample) + reserved;
            if (limits.StorageCeilingBytes > 0 && total > limits.StorageCeilingBytes)
            {
                Refuse(Refusal.StorageCeiling, $"the store holds its ceiling of {limits.StorageCeilingBytes} bytes (CacheService:Limits:StorageCeilingBytes)");
            }

            if (limits.MinFreeDiskBytes > 0 && freeDiskBytes() is { } free && free - reserved < limits.MinFreeDiskBytes)
            {
                Refuse(Refusal.FreeDisk, $"the data directory's disk would keep less than {limits.MinFreeDiskBytes} bytes free (CacheService:Limits:MinFreeDiskBytes)");
            }
        }
        catch
        {
            Interlocked.Add(ref _reserved, -bytes);
            throw;
        }

        return new Reservation(this, bytes);
    }

    private void Refuse(Refusal reason, string message)
    {
        observer.Refused(reason);
        throw new QuotaExceededException(message);
    }

    /// <summary>Room held for one write; disposing it gives the room back.</summary>
    public sealed class Reservation(StorageGuard guard, long bytes) : IDisposable
    {
        private int _released;

        /// <summary>The bytes were kept: they count as stored until the next sample includes them.</summary>
        public void Stored()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Add(ref guard._reserved, -bytes);
                Interlocked.Add(ref guard._storedSinceSample, bytes);
            }
        }

        /// <inheritdoc />
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Add(ref guard._reserved, -bytes);
            }
        }
    }
}
