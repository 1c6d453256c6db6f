using CacheService.Cli;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

var console = new CliConsole(Console.Out, Console.Error, !Console.IsOutputRedirected, Environment.GetEnvironmentVariable, TimeProvider.System);
return await LayercacheCli.RunAsync(args, console, cancel.Token);
