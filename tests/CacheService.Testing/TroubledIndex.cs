using CacheService.Core;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;

namespace CacheService.Testing;

/// <summary>The real SQLite index, made to hang or fail on demand (stats writes only stall).</summary>
public sealed class TroubledIndex(SqliteLayerIndex inner) : LayerIndexDecorator(inner)
{
    private volatile bool _stalled;
    private volatile bool _down;

    /// <summary>Calls hang until cancelled (stats writes are dropped).</summary>
    public bool Stalled { get => _stalled; set => _stalled = value; }

    /// <summary>Calls fail as an unreachable backend does.</summary>
    public bool Down { get => _down; set => _down = value; }

    public override Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken) =>
        Stalled ? Task.CompletedTask : base.RecordUsageAsync(ns, delta, cancellationToken);

    protected override async Task<T> CallAsync<T>(Func<ILayerIndex, Task<T>> operation, CancellationToken cancellationToken)
    {
        if (Down)
        {
            throw new BackendUnavailableException("index", new IOException("simulated outage"));
        }

        if (Stalled)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        return await base.CallAsync(operation, cancellationToken);
    }
}
