using CacheService.Server;

return await CacheServiceApp.RunAsync(args);
