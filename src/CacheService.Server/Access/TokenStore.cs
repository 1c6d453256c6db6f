using CacheService.Core.Access;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Access;

/// <summary>
/// The tokens of <see cref="AuthOptions.TokensFile"/>, read again when its content changes (at
/// most once per <see cref="AuthOptions.ReloadInterval"/>), so a new or revoked token takes effect
/// without a restart. The content is compared, not the file's time: a Kubernetes Secret volume
/// swaps a symlink, which leaves the times of the path's target file unreliable. A file that turns
/// bad keeps the tokens read last, and says so in the log.
/// </summary>
internal sealed class TokenStore
{
    private readonly AuthOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TokenStore> _logger;
    private readonly Lock _reload = new();
    private volatile Snapshot _current = new([], []);
    private long _checkedAtTicks = long.MinValue / 2; // UTC ticks of the last read; long, so it is read whole without the lock

    public TokenStore(IOptions<AuthOptions> options, TimeProvider time, ILogger<TokenStore> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        ReloadIfDue();
    }

    /// <summary>The token whose secret is <paramref name="secret"/>, or null. Every token is compared, each in constant time.</summary>
    public AccessToken? FindBySecret(string secret)
    {
        AccessToken? found = null;
        foreach (var token in Current().Tokens)
        {
            // No early exit: how long this takes does not tell which token matched, or how many were tried.
            if (token.Matches(secret))
            {
                found = token;
            }
        }

        return found;
    }

    /// <summary>The token named <paramref name="name"/>, or null (revoked, or never made).</summary>
    public AccessToken? FindByName(string name) => Current().Tokens.FirstOrDefault(t => t.Name == name);

    private Snapshot Current()
    {
        ReloadIfDue();
        return _current;
    }

    private void ReloadIfDue()
    {
        if (!_options.TokensRequired || !Due(_time.GetUtcNow()))
        {
            return;
        }

        lock (_reload)
        {
            var now = _time.GetUtcNow();
            if (!Due(now))
            {
                return;
            }

            Interlocked.Exchange(ref _checkedAtTicks, now.UtcTicks);
            var path = _options.TokensFile!;
            try
            {
                var bytes = File.ReadAllBytes(path);
                if (bytes.AsSpan().SequenceEqual(_current.Content))
                {
                    return;
                }

                var tokens = TokensFile.Read(path);
                var first = _current.Content.Length == 0;
                _current = new Snapshot(bytes, tokens);
                if (!first)
                {
                    Log.TokensReloaded(_logger, path, tokens.Count);
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                Log.TokensFileUnreadable(_logger, e, path, _current.Tokens.Count);
            }
        }
    }

    private bool Due(DateTimeOffset now) => now.UtcTicks - Interlocked.Read(ref _checkedAtTicks) >= _options.ReloadInterval.Ticks;

    private sealed record Snapshot(byte[] Content, IReadOnlyList<AccessToken> Tokens);
}
