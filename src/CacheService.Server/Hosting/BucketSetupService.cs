using CacheService.Blobs.S3;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Hosting;

/// <summary>Creates the S3 bucket at start when it is missing; an unreachable store only logs.</summary>
internal sealed class BucketSetupService(IServiceProvider services, IOptions<StorageOptions> storage, ILogger<BucketSetupService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (storage.Value.BlobEngine != BlobEngine.S3)
        {
            return;
        }

        try
        {
            await services.GetRequiredService<S3BlobStore>().EnsureBucketAsync(cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Log.BucketSetupFailed(logger, e); // requests will find out; a start must not fail on it
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
