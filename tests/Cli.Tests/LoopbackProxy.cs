using System.Net;
using System.Net.Sockets;

namespace Cli.Tests;

/// <summary>
/// A TCP forwarder on 127.0.0.1 in front of the gateway: a test cuts every connection through it
/// (<see cref="Cut"/>: the client sees its transport close, as on a network failure) and refuses
/// new ones until <see cref="Restore"/>.
/// </summary>
public sealed class LoopbackProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly List<(TcpClient In, TcpClient Out)> _pairs = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private bool _refusing;

    public LoopbackProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Connections accepted and forwarded so far.</summary>
    public int Forwarded { get; private set; }

    /// <summary>Closes every forwarded connection and refuses new ones.</summary>
    public void Cut()
    {
        lock (_gate)
        {
            _refusing = true;
            foreach (var (a, b) in _pairs)
            {
                a.Client.Close(0);
                b.Client.Close(0);
            }

            _pairs.Clear();
        }
    }

    /// <summary>Forwards new connections again.</summary>
    public void Restore()
    {
        lock (_gate)
        {
            _refusing = false;
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            bool refuse;
            lock (_gate)
            {
                refuse = _refusing;
            }

            if (refuse)
            {
                client.Client.Close(0);
                continue;
            }

            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                client.Dispose();
                upstream.Dispose();
                continue;
            }

            lock (_gate)
            {
                _pairs.Add((client, upstream));
                Forwarded++;
            }

            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            int read;
            while ((read = await input.ReadAsync(buffer, _stop.Token)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or SocketException or InvalidOperationException)
        {
            // the other side closed, or the test cut the connection
        }
        finally
        {
            from.Client.Close(0);
            to.Client.Close(0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Cut();
        await _accepting;
        _stop.Dispose();
    }
}
