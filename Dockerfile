# The server image: build with the .NET SDK, run on the ASP.NET Core runtime as a non-root user.
#   docker build -t cacheservice .
# It listens on every address, so it will not start without tokens: mount a tokens file and set
# CacheService__Auth__TokensFile, or set CacheService__Auth__AllowAnonymous=true to serve reads to anyone.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY protos/ protos/
COPY src/ src/
RUN dotnet publish src/CacheService.Server -c Release -o /app --no-self-contained

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
ENV CacheService__Server__ListenAddress=0.0.0.0 \
    Logging__Console__FormatterName=json \
    CacheService__Storage__DataDirectory=/data
RUN mkdir -p /data && chown app:app /data
USER app
EXPOSE 50051 8080
ENTRYPOINT ["dotnet", "CacheService.Server.dll"]
