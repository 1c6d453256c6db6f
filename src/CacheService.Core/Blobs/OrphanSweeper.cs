using CacheService.Core.Index;

namespace CacheService.Core.Blobs;

/// <summary>
/// Deletes blobs that no index entry references and that are older than the grace period:
/// leftovers of crashes, of uploads never committed, of index data lost. The grace period keeps
/// a blob uploaded a moment ago (its commit is on its way) and one just evicted (its collection
/// is due, a download may be in flight).
/// </summary>
/// <remarks>
/// A blob that an upload finds "already stored" and commits at the very moment it is swept: the
/// sweep re-checks for entries after its delete and the commit re-checks its blobs after its
/// write, so one of them removes the entry (see <see cref="BlobCollector.RepairIfCommittedAsync"/>).
/// </remarks>
public sealed class OrphanSweeper(ILayerIndex index, IBlobStore blobs, TimeProvider time)
{
    /// <summary>Sweeps the whole store once; returns how many blobs were deleted.</summary>
    public async Task<int> SweepOnceAsync(TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow() - gracePeriod;
        var deleted = 0;
        await foreach (var blob in blobs.ListAsync(cancellationToken))
        {
            if (blob.LastModified <= cutoff
                && !await index.IsBlobInUseAsync(blob.Namespace, blob.Digest, cancellationToken)
                && await blobs.DeleteAsync(blob.Namespace, blob.Digest, cancellationToken))
            {
                await BlobCollector.RepairIfCommittedAsync(index, blob.Namespace, blob.Digest, cancellationToken);
                deleted++;
            }
        }

        return deleted;
    }
}
