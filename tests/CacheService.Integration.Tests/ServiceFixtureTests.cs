using System.Globalization;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

/// <summary>
/// The fixtures that start real services: ports that an outgoing connection cannot take first,
/// and a failed start that leaves nothing running behind it.
/// </summary>
public sealed class ServiceFixtureTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(60)] // Ceph daemons bind up to 60 ports above the monitor's
    [InlineData(10000)] // Redis Cluster's bus listens on port + 10000
    public void Every_port_drawn_and_its_sibling_stay_below_the_ephemeral_range(int siblingOffset)
    {
        for (var i = 0; i < 500; i++)
        {
            var port = ServiceScripts.FreePort(siblingOffset);
            Assert.InRange(port, ServiceScripts.FirstServicePort, ServiceScripts.FirstEphemeralPort - 1 - siblingOffset);
        }
    }

    [Fact]
    public void A_start_that_fails_after_its_service_came_up_stops_it_and_tries_again()
    {
        var started = new List<(string Directory, int Port, int Pid)>();
        var (directory, port, _) = ServiceScripts.StartWithRetry(
            "redis-server",
            () =>
            {
                var dir = Directory.CreateTempSubdirectory("cs-fixture-").FullName;
                var p = ServiceScripts.FreePort();
                ServiceScripts.Run("redis.sh", "start", dir, p.ToString(CultureInfo.InvariantCulture));
                started.Add((dir, p, int.Parse(File.ReadAllText(Path.Combine(dir, p.ToString(CultureInfo.InvariantCulture), "redis.pid")), CultureInfo.InvariantCulture)));
                return started.Count == 1 ? throw new InvalidOperationException("a step after the service came up failed") : started[^1];
            },
            () => ServiceScripts.Run("redis.sh", "stop", started[^1].Directory));
        try
        {
            Assert.Equal(2, started.Count);
            Assert.False(Directory.Exists($"/proc/{started[0].Pid}"), "the first redis-server was left running");
            Assert.True(Directory.Exists($"/proc/{started[1].Pid}"));
            Assert.Equal(started[1].Port, port);
        }
        finally
        {
            ServiceScripts.Run("redis.sh", "stop", directory);
            started.ForEach(s => Directory.Delete(s.Directory, recursive: true));
        }
    }

    [Fact]
    public void A_start_that_keeps_failing_names_every_attempt_and_cleans_up_after_each()
    {
        var cleanUps = 0;
        var e = Assert.Throws<InvalidOperationException>(() => ServiceScripts.StartWithRetry<int>(
            "a service",
            () => throw new InvalidOperationException("port taken"),
            () => cleanUps++));
        Assert.Equal(3, cleanUps);
        Assert.Contains("a service did not start", e.Message, StringComparison.Ordinal);
        Assert.Contains("attempt 1: port taken", e.Message, StringComparison.Ordinal);
        Assert.Contains("attempt 3: port taken", e.Message, StringComparison.Ordinal);
    }
}
