using System.Globalization;
using CacheService.Core;
using CacheService.Core.Blobs;
using Minio.DataModel.Args;

namespace CacheService.Blobs.S3;

/// <summary>
/// Registry upload sessions shared by every replica (<see cref="IStagedUploads"/>): under the
/// staging area, <c>_direct/&lt;ns&gt;/&lt;session&gt;/</c> holds a marker (rewritten at every touch, so
/// the sweep measures idleness) and the parts <c>part-00000</c>, <c>part-00001</c>, ...
/// </summary>
public sealed partial class S3BlobStore : IStagedUploads
{
    private const string Marker = "open";
    private const string PartPrefix = "part-";

    /// <inheritdoc />
    public Task TouchSessionAsync(string ns, string session, CancellationToken cancellationToken) => Guard(async () =>
    {
        using var empty = new MemoryStream();
        await minio.PutObjectAsync(
            new PutObjectArgs().WithBucket(options.Bucket).WithObject(SessionName(ns, session) + Marker).WithStreamData(empty).WithObjectSize(0),
            cancellationToken);
        return true;
    }, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>?> PartsAsync(string ns, string session, CancellationToken cancellationToken)
    {
        var prefix = SessionName(ns, session);
        var items = minio.ListObjectsEnumAsync(new ListObjectsArgs().WithBucket(options.Bucket).WithPrefix(prefix).WithRecursive(true), cancellationToken);
        var open = false;
        var parts = new SortedDictionary<int, long>();
        await using (var cursor = items.GetAsyncEnumerator(cancellationToken))
        {
            while (await Guard(async () => await cursor.MoveNextAsync(), cancellationToken))
            {
                var name = cursor.Current.Key[prefix.Length..];
                if (name == Marker)
                {
                    open = true;
                }
                else if (name.StartsWith(PartPrefix, StringComparison.Ordinal)
                    && int.TryParse(name[PartPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                {
                    parts[number] = (long)cursor.Current.Size;
                }
            }
        }

        if (!open)
        {
            return null;
        }

        // Parts are written one after another; a gap means one was lost (swept, or deleted by hand).
        if (parts.Keys.Select((number, i) => number != i).Any(gap => gap))
        {
            throw new BackendUnavailableException("blobs", new InvalidDataException($"upload session {session} lost a part"));
        }

        return [.. parts.Values];
    }

    /// <inheritdoc />
    public async Task PutPartAsync(string ns, string session, int part, long size, Stream content, CancellationToken cancellationToken)
    {
        using var response = await PutObjectAsync(PartName(ns, session, part), content, size, cancellationToken);
        EnsureStaged(response, session);
    }

    /// <inheritdoc />
    public Task<Stream> OpenPartAsync(string ns, string session, int part, CancellationToken cancellationToken) =>
        OpenObjectAsync(PartName(ns, session, part), 0, response => EnsureStaged(response, session), cancellationToken);

    /// <inheritdoc />
    public async Task DeleteSessionAsync(string ns, string session, CancellationToken cancellationToken)
    {
        var parts = await PartsAsync(ns, session, cancellationToken) ?? [];
        var names = Enumerable.Range(0, parts.Count).Select(i => PartName(ns, session, i)).Append(SessionName(ns, session) + Marker);
        foreach (var name in names)
        {
            await Guard(async () =>
            {
                await minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(options.Bucket).WithObject(name), cancellationToken);
                return true;
            }, cancellationToken);
        }
    }

    // True for a session's marker or part, false for a staged direct upload.
    private static bool IsSessionObject(string key)
    {
        var name = key[(key.LastIndexOf('/') + 1)..];
        return name == Marker || name.StartsWith(PartPrefix, StringComparison.Ordinal);
    }

    private string SessionName(string ns, string session) =>
        session.Length == 32 && session.All(char.IsAsciiHexDigitLower)
            ? $"{StagingRoot}{NamespaceName.Validate(ns, "namespace")}/{session}/"
            : throw new InvalidFieldException("session", "is not an upload session id this server handed out");

    private string PartName(string ns, string session, int part) =>
        SessionName(ns, session) + PartPrefix + part.ToString("D5", CultureInfo.InvariantCulture);

    private static void EnsureStaged(HttpResponseMessage response, string session)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new BackendUnavailableException("blobs", new HttpRequestException($"object store answered {(int)response.StatusCode} for a part of upload session {session}"));
        }
    }
}
