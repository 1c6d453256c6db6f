using CacheService.Core;
using CacheService.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Wire = CacheService.Api.V1;

namespace CacheService.Client.Tests;

/// <summary>The SDK against the real server; network faults are injected on the client side.</summary>
public sealed class SdkTests : IAsyncLifetime
{
    private const string Ns = "team/sdk";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static readonly CacheServiceClientOptions FastRetries = new() { RetryDelay = TimeSpan.FromMilliseconds(1), ChunkSize = 64 * 1024 };

    private CacheServiceClient Client(Faults faults) =>
        new(_server.Channel.CreateCallInvoker().Intercept(faults), FastRetries);

    private static async Task<(byte[] Data, Digest Digest)> UploadAsync(CacheServiceClient client, int size)
    {
        var data = Layers.Random(size, seed: size);
        var digest = Digest.Of(data);
        await client.UploadAsync(Ns, new MemoryStream(data), digest, data.Length, LayerFile.TarMediaType);
        return (data, digest);
    }

    [Fact]
    public async Task Idempotent_calls_are_retried_on_UNAVAILABLE_and_deletes_are_not()
    {
        var faults = new Faults { FailUnary = 2 };
        using var client = Client(faults);
        var lookup = await client.LookupAsync(Ns, Digest.Of("k"u8));
        Assert.False(lookup.Hit);
        Assert.Equal(3, faults.Attempts["Lookup"]);

        faults.FailUnary = 1;
        await Assert.ThrowsAsync<RpcException>(() => client.DeleteAsync(Ns, [Digest.Of("k"u8)]));
        Assert.Equal(1, faults.Attempts["Delete"]);
    }

    [Fact]
    public async Task A_server_that_stays_unavailable_surfaces_as_an_error_after_the_retries()
    {
        var faults = new Faults { FailUnary = int.MaxValue };
        using var client = Client(faults);
        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetStatsAsync(Ns));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1 + FastRetries.MaxRetries, faults.Attempts["GetStats"]);
    }

    [Fact]
    public async Task Every_call_carries_a_deadline()
    {
        var faults = new Faults();
        using var client = Client(faults);
        var (_, digest) = await UploadAsync(client, 1000);
        await client.LookupAsync(Ns, Digest.Of("k"u8));
        await client.DownloadAsync(Ns, digest, new MemoryStream());
        await client.GetStatsAsync(Ns);
        Assert.Equal(4, faults.Deadlines.Count);
        Assert.All(faults.Deadlines, d => Assert.True(d > DateTime.UtcNow && d < DateTime.UtcNow.AddDays(1)));
    }

    [Fact]
    public async Task A_download_cut_off_midway_resumes_where_it_stopped()
    {
        var faults = new Faults();
        using var client = Client(faults);
        var (data, digest) = await UploadAsync(client, 3 * 1024 * 1024);
        faults.CutDownloadAfterMessages = 2;
        using var received = new MemoryStream();
        var reported = new List<long>();
        var written = await client.DownloadAsync(Ns, digest, received, progress: new Recorder(reported));
        Assert.Equal(2, faults.Attempts["DownloadLayer"]);
        Assert.True(faults.Offsets[1] > 0, "the second attempt asks for the rest only");
        Assert.Equal(data.Length, written);
        Assert.Equal(data, received.ToArray());
        Assert.Equal(data.Length, reported[^1]);
    }

    [Fact]
    public async Task A_download_from_an_offset_returns_the_rest_of_the_blob()
    {
        using var client = Client(new Faults());
        var (data, digest) = await UploadAsync(client, 100_000);
        using var rest = new MemoryStream();
        await client.DownloadAsync(Ns, digest, rest, offset: 60_000);
        Assert.Equal(data[60_000..], rest.ToArray());
    }

    [Fact]
    public async Task Upload_reports_progress_up_to_the_size_and_ends_early_for_a_stored_blob()
    {
        using var client = Client(new Faults());
        var data = Layers.Random(300_000, seed: 7);
        var reported = new List<long>();
        var first = await client.UploadAsync(Ns, new MemoryStream(data), Digest.Of(data), data.Length, LayerFile.TarMediaType, new Recorder(reported));
        Assert.False(first.AlreadyExisted);
        Assert.True(reported.Count >= 5, "one report per 64 KiB chunk");
        Assert.Equal(reported.Order(), reported);
        Assert.Equal(data.Length, reported[^1]);

        var again = await client.UploadAsync(Ns, new MemoryStream(data), Digest.Of(data), data.Length, LayerFile.TarMediaType);
        Assert.True(again.AlreadyExisted);
    }

    [Fact]
    public async Task LayerFile_takes_the_diff_id_from_the_uncompressed_tar()
    {
        var dir = Directory.CreateTempSubdirectory("cs-layer-").FullName;
        try
        {
            var tar = Path.Combine(dir, "layer.tar");
            await Layers.WriteTarAsync(tar, ("hello.txt", "hello"u8.ToArray()));
            var gz = tar + ".gz";
            await using (var output = File.Create(gz))
            await using (var gzip = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Fastest))
            await using (var input = File.OpenRead(tar))
            {
                await input.CopyToAsync(gzip);
            }

            var plain = await LayerFile.DescribeAsync(tar);
            var compressed = await LayerFile.DescribeAsync(gz);
            Assert.Equal(LayerFile.TarMediaType, plain.MediaType);
            Assert.Equal(plain.Digest, plain.DiffId);
            Assert.Equal(LayerFile.GzipMediaType, compressed.MediaType);
            Assert.Equal(plain.DiffId, compressed.DiffId);
            Assert.NotEqual(compressed.Digest, compressed.DiffId);
            Assert.Equal(new FileInfo(gz).Length, compressed.Size);

            await File.WriteAllTextAsync(Path.Combine(dir, "notes.txt"), "not a layer");
            await Assert.ThrowsAsync<InvalidFieldException>(() => LayerFile.DescribeAsync(Path.Combine(dir, "notes.txt")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private sealed class Recorder(List<long> values) : IProgress<long>
    {
        public void Report(long value) => values.Add(value);
    }

    /// <summary>Drops calls the way a flaky network does, and records what each call carried.</summary>
    private sealed class Faults : Interceptor
    {
        public int FailUnary { get; set; }

        public int CutDownloadAfterMessages { get; set; }

        public Dictionary<string, int> Attempts { get; } = [];

        public List<DateTime> Deadlines { get; } = [];

        public List<long> Offsets { get; } = [];

        private void Count<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
            where TRequest : class
            where TResponse : class
        {
            Attempts[context.Method.Name] = Attempts.GetValueOrDefault(context.Method.Name) + 1;
            if (context.Options.Deadline is { } deadline)
            {
                Deadlines.Add(deadline);
            }
        }

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        {
            Count(context);
            if (FailUnary > 0)
            {
                FailUnary--;
                var failed = Task.FromException<TResponse>(new RpcException(new Status(StatusCode.Unavailable, "injected: connection refused")));
                return new AsyncUnaryCall<TResponse>(failed, Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
            }

            return continuation(request, context);
        }

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
            ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            Count(context);
            return continuation(context);
        }

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            Count(context);
            Offsets.Add((request as Wire.DownloadLayerRequest)?.Offset ?? 0);
            var call = continuation(request, context);
            if (CutDownloadAfterMessages == 0)
            {
                return call;
            }

            var cut = CutDownloadAfterMessages;
            CutDownloadAfterMessages = 0;
            return new AsyncServerStreamingCall<TResponse>(new CutReader<TResponse>(call.ResponseStream, cut), call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
        }
    }

    private sealed class CutReader<T>(IAsyncStreamReader<T> inner, int messages) : IAsyncStreamReader<T>
    {
        private int _read;

        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (_read++ == messages)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "injected: connection reset"));
            }

            return await inner.MoveNext(cancellationToken);
        }
    }
}
