using CacheService.Bench;

return args.FirstOrDefault() switch
{
    "embedded" or "distributed" => await ServiceBench.RunAsync(args[0], args[1..]),
    "registry" => await RegistryBench.RunAsync(),
    "build" => await BuildBench.RunAsync(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: CacheService.Bench embedded|distributed [--seconds S] [--callers C]   (needs the server built: make build)");
    Console.Error.WriteLine("       CacheService.Bench registry   (buildah against docker-registry and the facade)");
    Console.Error.WriteLine("       CacheService.Bench build      (layercache build against buildah with a docker-registry cache)");
    return 2;
}
