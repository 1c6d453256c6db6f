using CacheService.Core;
using CacheService.Core.Index;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CacheService.Server.Hosting;

/// <summary>Healthy while the index answers a read within two seconds.</summary>
internal sealed class IndexHealthCheck(ILayerIndex index) : IHealthCheck
{
    private const string ProbeNamespace = "health";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        // A stalled index must fail the probe in time, not hang it.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await index.GetUsageAsync(ProbeNamespace, timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (BackendUnavailableException e)
        {
            return HealthCheckResult.Unhealthy("index unavailable", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("index did not answer in 2 seconds");
        }
    }
}
