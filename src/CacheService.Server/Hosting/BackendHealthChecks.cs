using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CacheService.Server.Hosting;

/// <summary>
/// Healthy while a backend answers one cheap read within two seconds: a probe must answer before
/// the orchestrator's own timeout, not after the backend's retries, and a stalled backend must
/// fail it rather than hang it.
/// </summary>
internal abstract class BackendHealthCheck(string backend) : IHealthCheck
{
    protected const string ProbeNamespace = "health";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await ProbeAsync(timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (BackendUnavailableException e)
        {
            return HealthCheckResult.Unhealthy($"{backend} unavailable", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"{backend} did not answer in 2 seconds");
        }
    }

    protected abstract Task ProbeAsync(CancellationToken cancellationToken);
}

/// <summary>Healthy while the index answers a read.</summary>
internal sealed class IndexHealthCheck(ILayerIndex index) : BackendHealthCheck("index")
{
    protected override Task ProbeAsync(CancellationToken cancellationToken) => index.GetUsageAsync(ProbeNamespace, cancellationToken);
}

/// <summary>Healthy while the blob store answers a stat.</summary>
internal sealed class BlobStoreHealthCheck(IBlobStore blobs) : BackendHealthCheck("blob store")
{
    private static readonly Digest Probe = Digest.Of("cacheservice readiness probe"u8);

    protected override Task ProbeAsync(CancellationToken cancellationToken) => blobs.GetSizeAsync(ProbeNamespace, Probe, cancellationToken);
}
