using CacheService.Bench;

return args.FirstOrDefault() switch
{
    "embedded" or "distributed" => await ServiceBench.RunAsync(args[0], args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: CacheService.Bench embedded|distributed [--seconds S] [--callers C]   (needs the server built: make build)");
    return 2;
}
