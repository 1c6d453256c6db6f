using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CacheService.Index.Sqlite;

/// <summary>Registers the embedded SQLite index.</summary>
public static class SqliteIndexRegistration
{
    /// <summary>Adds <see cref="SqliteLayerIndex"/>, opened at the path <paramref name="path"/> gives, on first use.</summary>
    public static IServiceCollection AddSqliteLayerIndex(this IServiceCollection services, Func<IServiceProvider, string> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        services.TryAddSingleton(sp => new SqliteLayerIndex(path(sp), sp.GetRequiredService<TimeProvider>()));
        return services;
    }
}
