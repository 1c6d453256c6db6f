using CacheService.Bench;

return args.FirstOrDefault() switch
{
    "redis-index" => await RedisIndexBench.RunAsync(args.Skip(1).ToArray()),
    "s3-transfer" => await S3TransferBench.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: CacheService.Bench redis-index [--entries N] [--seconds S] [--concurrency C]");
    Console.Error.WriteLine("       CacheService.Bench s3-transfer [MiB]   (needs the server built: make build)");
    return 2;
}
