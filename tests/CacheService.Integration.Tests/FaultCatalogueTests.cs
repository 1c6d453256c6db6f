using CacheService.Blobs.S3;
using CacheService.Testing;
using Minio.DataModel.Args;

namespace CacheService.Integration.Tests;

/// <summary>The fault catalogue on the production engines: a real Redis and a real Ceph RGW.</summary>
[Collection(SharedRgw.Name)]
public sealed class FaultCatalogueTests(RgwServer rgw) : FaultCatalogue
{
    private readonly RedisServers _redis = RedisServers.StartSingle();
    private readonly S3BlobOptions _s3 = rgw.Options();

    protected override Task<TestServer> StartServerAsync(params string[] args) => TestServer.StartAsync(
    [
        "--CacheService:Storage:IndexEngine=redis",
        $"--CacheService:Redis:Configuration={_redis.Configuration}", RedisServers.EntryKeyArg,
        "--CacheService:Storage:BlobEngine=s3",
        $"--CacheService:S3:Endpoint={_s3.Endpoint}",
        $"--CacheService:S3:Bucket={_s3.Bucket}",
        $"--CacheService:S3:Prefix={_s3.Prefix}",
        $"--CacheService:S3:AccessKey={_s3.AccessKey}",
        $"--CacheService:S3:SecretKey={_s3.SecretKey}",
        .. args,
    ]);

    protected override async Task CorruptAsync(string ns, string digest)
    {
        var minio = S3BlobStore.CreateClient(_s3);
        var name = $"{_s3.Prefix}/{ns}/blobs/sha256/{digest["sha256:".Length..]}";
        using var bytes = new MemoryStream();
        await minio.GetObjectAsync(new GetObjectArgs().WithBucket(_s3.Bucket).WithObject(name).WithCallbackStream(s => s.CopyTo(bytes)));
        var rotten = bytes.ToArray();
        rotten[^1] ^= 0xFF;
        using var upload = new MemoryStream(rotten);
        await minio.PutObjectAsync(new PutObjectArgs().WithBucket(_s3.Bucket).WithObject(name).WithStreamData(upload).WithObjectSize(rotten.Length));
    }

    protected override string[] StagedBlobUploads() => []; // S3 puts stream straight to the gateway: nothing is staged here

    // Every whole-blob read goes through a spool file that lives exactly as long as its fetch.
    protected override int ReadsLeftOpen(string ns, string digest) => Directory.GetFiles(Path.Combine(Server.DataDirectory, "spool")).Length;

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _redis.Dispose();
        }
    }
}
