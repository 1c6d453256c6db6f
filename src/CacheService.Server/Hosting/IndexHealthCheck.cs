using CacheService.Core;
using CacheService.Core.Index;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CacheService.Server.Hosting;

/// <summary>Healthy while the index answers a read.</summary>
internal sealed class IndexHealthCheck(ILayerIndex index) : IHealthCheck
{
    private const string ProbeNamespace = "health";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await index.GetUsageAsync(ProbeNamespace, cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (BackendUnavailableException e)
        {
            return HealthCheckResult.Unhealthy("index unavailable", e);
        }
    }
}
