using CacheService.Server;

var app = CacheServiceApp.Create(args);
await app.RunAsync();
