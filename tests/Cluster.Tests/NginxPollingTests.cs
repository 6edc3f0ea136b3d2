using System.Net;
using System.Text;
using System.Text.Json;

namespace Cluster.Tests;

/// <summary>HTTP long-polling clients through nginx in front of three nodes (sticky sessions).</summary>
public sealed class NginxPollingTests
{
    private const char Separator = '\u001e';

    [Fact]
    public async Task Polling_viewers_through_nginx_with_three_upstreams_get_every_event_once_in_order()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration, settings: new Dictionary<string, string> { ["Builder:Engine:Cookie"] = "io" });
        var viewers = new List<PollingViewer>();
        try
        {
            await using var nginx = await NginxProcess.StartAsync([.. nodes.Select(n => $"127.0.0.1:{n.Port}")]);
            const string project = "polled";
            for (var i = 0; i < 6; i++)
            {
                var viewer = new PollingViewer(nginx.Url);
                viewers.Add(viewer);
                await viewer.ConnectAsync(GatewayNode.Token($"poller-{i}", project));
                await viewer.JoinAsync(project);
            }

            // nginx spread the sessions over the nodes, and each was told its Engine.IO session id in the io cookie
            Assert.True(viewers.Select(v => v.Node).Distinct().Count() >= 2, "sessions on: " + string.Join(", ", viewers.Select(v => v.Node)));
            Assert.All(viewers, v => Assert.Equal(v.SessionId, v.Cookie("io")));

            const int total = 30;
            for (var i = 0; i < total; i++)
            {
                using var response = await nodes[i % 3].PublishAsync(project, "agent:status:update", JsonSerializer.Serialize(new { agentId = "a1", agentType = "ui", status = "working", message = $"m{i}" }));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }

            foreach (var viewer in viewers)
            {
                await Deadline.UntilAsync(() => viewer.Seqs(project).Count >= total, Viewer.Wait, "every event at every polling viewer");
                Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), viewer.Seqs(project));
                Assert.True(viewer.Failures.Count == 0, string.Join("; ", viewer.Failures));
            }
        }
        finally
        {
            foreach (var viewer in viewers)
            {
                await viewer.DisposeAsync();
            }

            await ClusterLogTests.DisposeAllAsync([], nodes);
        }
    }

    /// <summary>A hand-written long-polling client with its own cookies (as a browser keeps them), every request through nginx.</summary>
    private sealed class PollingViewer : IAsyncDisposable
    {
        private readonly CookieContainer _cookies = new();
        private readonly HttpClient _http;
        private readonly Uri _base;
        private readonly List<string> _packets = [];
        private readonly CancellationTokenSource _stop = new();
        private Task? _poller;
        private Uri? _url;

        public PollingViewer(Uri nginx)
        {
            _base = nginx;
            _http = new HttpClient(new HttpClientHandler { CookieContainer = _cookies, UseCookies = true }) { BaseAddress = nginx, Timeout = TimeSpan.FromSeconds(60) };
        }

        public string? SessionId { get; private set; }

        /// <summary>The node nginx chose (its srv cookie).</summary>
        public string? Node => Cookie("srv");

        /// <summary>Answers other than 200 (a "Session ID unknown" would land here).</summary>
        public List<string> Failures { get; } = [];

        public string? Cookie(string name) => _cookies.GetCookies(_base)[name]?.Value;

        public async Task ConnectAsync(string token)
        {
            var open = await _http.GetStringAsync(new Uri("socket.io/?EIO=4&transport=polling", UriKind.Relative));
            Assert.StartsWith("0", open, StringComparison.Ordinal);
            SessionId = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString();
            _url = new Uri($"socket.io/?EIO=4&transport=polling&sid={Uri.EscapeDataString(SessionId!)}", UriKind.Relative);
            await PostAsync("40/builder," + JsonSerializer.Serialize(new { token }));
            _poller = Task.Run(PollAsync);
            await Deadline.UntilAsync(() => Packets().Any(p => p.StartsWith("42/builder,[\"authenticated\"", StringComparison.Ordinal)), Viewer.Wait, "authenticated");
        }

        public async Task JoinAsync(string projectId)
        {
            await PostAsync("42/builder,1" + JsonSerializer.Serialize(new object[] { "join-project", new { projectId } }));
            await Deadline.UntilAsync(() => Packets().Any(p => p.StartsWith("43/builder,1[", StringComparison.Ordinal)), Viewer.Wait, "the join's ack");
            Assert.Contains(Packets(), p => p.StartsWith("43/builder,1[", StringComparison.Ordinal) && p.Contains("\"ok\":true", StringComparison.Ordinal));
        }

        public List<long> Seqs(string projectId)
        {
            var seqs = new List<long>();
            foreach (var packet in Packets().Where(p => p.StartsWith("42/builder,[", StringComparison.Ordinal)))
            {
                var args = JsonDocument.Parse(packet["42/builder,".Length..]).RootElement;
                if (args.GetArrayLength() > 1 && args[1].ValueKind == JsonValueKind.Object && args[1].TryGetProperty("seq", out var seq)
                    && args[1].TryGetProperty("eventId", out _) && args[1].TryGetProperty("projectId", out var p) && p.GetString() == projectId)
                {
                    seqs.Add(seq.GetInt64());
                }
            }

            return seqs;
        }

        private List<string> Packets()
        {
            lock (_packets)
            {
                return [.. _packets];
            }
        }

        private async Task PostAsync(string packet)
        {
            using var content = new StringContent(packet, Encoding.UTF8, "text/plain");
            using var response = await _http.PostAsync(_url, content);
            Assert.True(response.IsSuccessStatusCode, $"POST {response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        private async Task PollAsync()
        {
            // bounded: stopped by DisposeAsync, at most 10 000 polls
            for (var i = 0; i < 10_000 && !_stop.IsCancellationRequested; i++)
            {
                try
                {
                    using var response = await _http.GetAsync(_url, _stop.Token);
                    var body = await response.Content.ReadAsStringAsync(_stop.Token);
                    if (!response.IsSuccessStatusCode)
                    {
                        lock (Failures)
                        {
                            Failures.Add($"{(int)response.StatusCode} {body}");
                        }

                        return;
                    }

                    foreach (var packet in body.Split(Separator))
                    {
                        if (packet == "2")
                        {
                            await PostAsync("3"); // the Engine.IO heartbeat
                        }

                        lock (_packets)
                        {
                            _packets.Add(packet);
                        }
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpRequestException ex)
                {
                    lock (Failures)
                    {
                        Failures.Add(ex.Message);
                    }

                    return;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            if (_poller is not null)
            {
                await _poller;
            }

            _http.Dispose();
            _stop.Dispose();
        }
    }
}
