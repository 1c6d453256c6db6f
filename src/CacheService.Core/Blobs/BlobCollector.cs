using CacheService.Core.Index;

namespace CacheService.Core.Blobs;

/// <summary>
/// Deletes blobs from the store once the index says nothing has referenced them for the grace
/// period. The index decides (atomically) what is collectable; this only carries it out.
/// </summary>
public sealed class BlobCollector(ILayerIndex index, IBlobStore blobs, TimeProvider time)
{
    /// <summary>Most blobs taken from the queue per round trip.</summary>
    public const int BatchSize = 256;

    /// <summary>Deletes every blob unreferenced for at least <paramref name="gracePeriod"/>; returns how many.</summary>
    public async Task<int> CollectOnceAsync(TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        var deleted = 0;
        while (true)
        {
            var due = await index.TakeCollectableBlobsAsync(time.GetUtcNow() - gracePeriod, BatchSize, cancellationToken);
            foreach (var blob in due)
            {
                await blobs.DeleteAsync(blob.Namespace, blob.Digest, cancellationToken);
                await RepairIfCommittedAsync(index, blob.Namespace, blob.Digest, cancellationToken);
                deleted++;
            }

            if (due.Count < BatchSize)
            {
                return deleted;
            }
        }
    }

    /// <summary>
    /// After a delete: a commit that found the blob stored just before it went may have landed
    /// since; its entries go, so the next lookup misses instead of promising bytes that are gone
    /// (the commit side makes the matching check, see <c>LayerCommits</c>).
    /// </summary>
    internal static async Task RepairIfCommittedAsync(ILayerIndex index, string ns, Digest digest, CancellationToken cancellationToken)
    {
        if (await index.IsBlobInUseAsync(ns, digest, cancellationToken))
        {
            await index.RemoveEntriesReferencingAsync(ns, digest, CancellationToken.None);
        }
    }
}
