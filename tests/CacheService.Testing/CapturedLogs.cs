using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CacheService.Testing;

/// <summary>A logger provider that keeps every entry at or above <paramref name="minimum"/>, to assert on what the server logs.</summary>
public sealed class CapturedLogs(LogLevel minimum = LogLevel.Warning) : ILoggerProvider
{
    public LogLevel Minimum { get; } = minimum;

    public ConcurrentQueue<(string Category, LogLevel Level, int EventId, string Message, Exception? Exception)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= owner.Minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner.Entries.Enqueue((category, logLevel, eventId.Id, formatter(state, exception), exception));
            }
        }
    }
}
