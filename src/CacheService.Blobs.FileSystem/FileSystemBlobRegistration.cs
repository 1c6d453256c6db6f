using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CacheService.Blobs.FileSystem;

/// <summary>Registers the embedded file-system blob store.</summary>
public static class FileSystemBlobRegistration
{
    /// <summary>Adds <see cref="FileSystemBlobStore"/> in the directory <paramref name="root"/> gives, on first use.</summary>
    public static IServiceCollection AddFileSystemBlobStore(this IServiceCollection services, Func<IServiceProvider, string> root)
    {
        ArgumentNullException.ThrowIfNull(root);
        services.TryAddSingleton(sp => new FileSystemBlobStore(root(sp)));
        return services;
    }
}
