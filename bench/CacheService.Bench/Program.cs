using CacheService.Bench;

return args.FirstOrDefault() switch
{
    "redis-index" => await RedisIndexBench.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: CacheService.Bench redis-index [--entries N] [--seconds S] [--concurrency C]");
    return 2;
}
