using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CacheService.Blobs.S3;

/// <summary>Registers the S3-compatible blob store.</summary>
public static class S3BlobRegistration
{
    /// <summary>Adds <see cref="S3BlobStore"/> and its options (section <see cref="S3BlobOptions.Section"/>), created on first use.</summary>
    public static IServiceCollection AddS3BlobStore(this IServiceCollection services)
    {
        services.AddOptions<S3BlobOptions>().BindConfiguration(S3BlobOptions.Section);
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<S3BlobOptions>>().Value;
            // Layers take as long as they take; connecting must not. Per-call limits come from
            // the resilience pipelines and the callers' deadlines.
#pragma warning disable CA2000 // the store owns the client for the life of the process
            var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2), PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            {
                Timeout = Timeout.InfiniteTimeSpan,
            };
#pragma warning restore CA2000
            return new S3BlobStore(S3BlobStore.CreateClient(options), http, options);
        });
        return services;
    }
}
