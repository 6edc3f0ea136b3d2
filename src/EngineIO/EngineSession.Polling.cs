using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <content>The HTTP long-polling transport of a session: its GETs (the client waiting for packets) and POSTs (packets from the client).</content>
public sealed partial class EngineSession
{
    internal async Task HandlePollAsync(HttpContext context)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _pollWaiter, waiter, null) is not null)
        {
            // a second GET while one is pending: the spec closes the session
            Abort(EngineCloseReasonKind.TransportError);
            await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.BadRequest);
            return;
        }

        try
        {
            if (!_queue.IsEmpty || !IsOpen || _upgrading)
            {
                waiter.TrySetResult();
            }

            using (context.RequestAborted.Register(static s => ((EngineSession)s!).OnPollAborted(), this))
            {
                await waiter.Task;
            }

            if (context.RequestAborted.IsCancellationRequested)
            {
                return;
            }

            var packets = new List<EngineMessage>();
            var closeAfter = false;
            if (!IsOpen)
            {
                packets.Add(_closeResponse);
            }
            else if (_upgrading || _upgraded)
            {
                packets.Add(EngineMessage.Noop);
            }
            else
            {
                var size = 0;
                while (size < _options.MaxPayload && TryDequeue(out var packet))
                {
                    packets.Add(packet);
                    size += packet.Frame.Length;
                    if (ReferenceEquals(packet, EngineMessage.ClosePacket))
                    {
                        closeAfter = true;
                        break;
                    }
                }

                if (packets.Count == 0)
                {
                    packets.Add(EngineMessage.Noop);
                }
            }

            var writer = new ArrayBufferWriter<byte>(256);
            PollingPayload.Encode(packets, writer);
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "text/plain; charset=UTF-8";
            context.Response.ContentLength = writer.WrittenCount;
            EngineIOServer.CountSent(writer.WrittenCount);
            await context.Response.Body.WriteAsync(writer.WrittenMemory, context.RequestAborted);
            if (closeAfter)
            {
                Abort(EngineCloseReasonKind.ForcedClose);
            }
        }
        finally
        {
            Interlocked.CompareExchange(ref _pollWaiter, null, waiter);
        }
    }

    private void OnPollAborted()
    {
        // the client went away while its GET was pending: the session is lost
        Abort(EngineCloseReasonKind.TransportClose);
    }

    internal async Task HandlePostAsync(HttpContext context)
    {
        if (Interlocked.Exchange(ref _postInProgress, 1) != 0)
        {
            Abort(EngineCloseReasonKind.TransportError);
            await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.BadRequest);
            return;
        }

        try
        {
            if (context.Request.ContentType == "application/octet-stream")
            {
                Abort(EngineCloseReasonKind.TransportError);
                await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.BinaryContentType);
                return;
            }

            var declared = context.Request.ContentLength;
            if (declared > _options.MaxPayload)
            {
                await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.PayloadTooLarge(_options.MaxPayload));
                return;
            }

            var body = await ReadBodyAsync(context.Request.Body, _options.MaxPayload, context.RequestAborted);
            if (body is null)
            {
                await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.PayloadTooLarge(_options.MaxPayload));
                return;
            }

            if (!IsValidText(body.Value.Span))
            {
                // what a WebSocket text message that is not UTF-8 gets (1007), as an HTTP answer:
                // nothing invalid reaches the handler, whichever the transport
                Abort(EngineCloseReasonKind.ParseError);
                await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.PayloadNotUtf8);
                return;
            }

            var packets = new List<EngineMessage>();
            if (!PollingPayload.TryDecode(body.Value, packets))
            {
                Abort(EngineCloseReasonKind.ParseError);
                await EngineIOServer.WriteErrorAsync(_server.Log, context, EngineError.BadRequest);
                return;
            }

            foreach (var packet in packets)
            {
                OnPacket(packet);
            }

            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "text/html";
            context.Response.ContentLength = 2;
            await context.Response.Body.WriteAsync("ok"u8.ToArray(), context.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException)
        {
            Abort(EngineCloseReasonKind.TransportError);
        }
        finally
        {
            Volatile.Write(ref _postInProgress, 0);
        }
    }

    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(Stream body, int max, CancellationToken ct)
    {
        var buffer = new byte[Math.Min(max + 1, 4096)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > max)
                {
                    return null;
                }

                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, max + 1));
            }

            var read = await body.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0)
            {
                return buffer.AsMemory(0, length);
            }

            length += read;
            if (length > max)
            {
                return null;
            }
        }
    }
}
