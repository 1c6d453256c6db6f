using CacheService.Core.Blobs;

namespace CacheService.Core.Transfers;

/// <summary>
/// Hashes stored blobs against their digests in the background, about a given number of bytes per
/// round, each round going on where the last one stopped and a new pass starting when the store
/// has been walked. A blob that no longer matches (rot, a bad disk, someone writing to the bucket)
/// is purged with the entries that name it (<see cref="LayerTransfers.ScrubAsync"/>), so the next
/// build misses and rebuilds it instead of pulling bytes a registry client would refuse. This is
/// what lets the registry trust the store on most reads: every blob is verified on write, by the
/// scrubber once per pass, and on the share of reads the configuration asks for.
/// </summary>
public sealed class BlobScrubber(IBlobStore blobs, LayerTransfers transfers) : IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _oneRound = new(1, 1);
    private IAsyncEnumerator<StoredBlob>? _pass;

    /// <summary>
    /// Checks blobs until about <paramref name="maxBytes"/> have been hashed or the pass ends
    /// (at least one blob when any is stored); returns how many were corrupt and purged.
    /// </summary>
    public async Task<int> ScrubOnceAsync(long maxBytes, CancellationToken cancellationToken)
    {
        await _oneRound.WaitAsync(cancellationToken);
        try
        {
            BackgroundReads.Mark(); // check the store of record, and leave local copies to the builds
            var corrupt = 0;
            for (long hashed = 0; hashed < maxBytes;)
            {
                // The listing outlives the round that started it, so it is not tied to that round's token.
                _pass ??= blobs.ListAsync(CancellationToken.None).GetAsyncEnumerator(CancellationToken.None);
                bool more;
                try
                {
                    more = await _pass.MoveNextAsync();
                }
                catch
                {
                    await EndPassAsync(); // a listing that failed starts over next round
                    throw;
                }

                if (!more)
                {
                    await EndPassAsync();
                    break;
                }

                var blob = _pass.Current;
                if (!await transfers.ScrubAsync(blob.Namespace, blob.Digest, cancellationToken))
                {
                    corrupt++;
                }

                hashed += Math.Max(blob.Size, 1);
            }

            return corrupt;
        }
        finally
        {
            _oneRound.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await EndPassAsync();
        _oneRound.Dispose();
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task EndPassAsync()
    {
        if (_pass is not null)
        {
            await _pass.DisposeAsync();
            _pass = null;
        }
    }
}
