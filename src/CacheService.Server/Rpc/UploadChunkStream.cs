using CacheService.Core;
using CacheService.Core.Blobs;
using Google.Protobuf;
using Grpc.Core;
using Wire = CacheService.Api.V1;

namespace CacheService.Server.Rpc;

/// <summary>
/// Reads the chunks of an UploadLayer call as a forward-only stream, one message at a time, so
/// a blob store can consume an upload of any size in constant memory. A client that sends no
/// chunk for <paramref name="idleTimeout"/> (on the injected clock) has abandoned the upload: the
/// read fails naming the field, and the store drops what it staged.
/// </summary>
internal sealed class UploadChunkStream(IAsyncStreamReader<Wire.UploadLayerRequest> requests, TimeSpan idleTimeout, TimeProvider time) : ReadOnlyStream
{
    private ByteString _chunk = ByteString.Empty;
    private int _offset;

    // Fills the caller's buffer across message boundaries: whoever consumes the upload (an HTTP
    // PUT to the object store) then writes full buffers instead of one small write a message.
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            if (_offset == _chunk.Length && !await NextChunkAsync(cancellationToken))
            {
                break;
            }

            var count = Math.Min(buffer.Length - filled, _chunk.Length - _offset);
            _chunk.Memory.Slice(_offset, count).CopyTo(buffer[filled..]);
            _offset += count;
            filled += count;
        }

        return filled;
    }

    private async ValueTask<bool> NextChunkAsync(CancellationToken cancellationToken)
    {
        using var idle = new CancellationTokenSource(idleTimeout, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token);
        try
        {
            if (!await requests.MoveNext(wait.Token))
            {
                return false;
            }
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new InvalidFieldException("chunk", $"none arrived for {idleTimeout}; the upload was abandoned");
        }

        if (requests.Current.PayloadCase != Wire.UploadLayerRequest.PayloadOneofCase.Chunk)
        {
            throw new InvalidFieldException("chunk", "every message after the header must carry a chunk");
        }

        _chunk = requests.Current.Chunk;
        _offset = 0;
        return true;
    }
}
