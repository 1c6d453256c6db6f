namespace CacheService.Testing;

/// <summary>A test class with one server on the embedded engines per test, and an HTTP client for its registry API.</summary>
public abstract class EmbeddedServerTests : IAsyncLifetime, IDisposable
{
    /// <summary>Talks to <see cref="Server"/>'s HTTP port.</summary>
    protected HttpClient Http { get; } = new();

    /// <summary>The server of the running test.</summary>
    protected TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync();
        Http.BaseAddress = new Uri($"http://127.0.0.1:{Server.HttpPort}");
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public void Dispose()
    {
        Http.Dispose();
        GC.SuppressFinalize(this);
    }
}
