using CacheService.Core;
using CacheService.Core.Blobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CacheService.Server.Hosting;

/// <summary>Healthy while the blob store answers a stat within two seconds.</summary>
internal sealed class BlobStoreHealthCheck(IBlobStore blobs) : IHealthCheck
{
    private const string ProbeNamespace = "health";
    private static readonly Digest Probe = Digest.Of("cacheservice readiness probe"u8);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        // A probe must answer before the orchestrator's own timeout, not after the store's retries.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await blobs.GetSizeAsync(ProbeNamespace, Probe, timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (BackendUnavailableException e)
        {
            return HealthCheckResult.Unhealthy("blob store unavailable", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("blob store did not answer in 2 seconds");
        }
    }
}
