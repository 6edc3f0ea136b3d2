using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Runner;

/// <summary>The build endpoints of the producers' API, called as a producer (the ingest API key).</summary>
internal static class BuildApi
{
    public const string Shop = "An online shop with users, products and orders";

    /// <summary>The runner paces on the system clock: this many simulated seconds per real second.</summary>
    public const double Fast = 2000;

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    /// <summary>POST /api/projects/{id}/builds; returns status and body. No <paramref name="credential"/>: the API key.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> StartRawAsync(TestGateway gateway, string projectId, object body, Action<HttpRequestMessage>? credential = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/builds")
        {
            Content = JsonContent.Create(body, options: s_json),
        };
        if (credential is null)
        {
            request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        }
        else
        {
            credential(request);
        }

        using var response = await gateway.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Starts a simulated build that must be accepted (202); returns its build id.</summary>
    public static async Task<string> StartAsync(TestGateway gateway, string projectId, double speed = Fast, bool deploy = false, object[]? faults = null, string requirements = Shop)
    {
        var (status, body) = await StartRawAsync(gateway, projectId, new { requirements, simulate = true, deploy, speed, faults });
        Assert.True(status == HttpStatusCode.Accepted, $"start build in {projectId}: {(int)status} {body.GetRawText()}");
        Assert.Equal(projectId, body.GetProperty("projectId").GetString());
        var buildId = body.GetProperty("buildId").GetString();
        Assert.False(string.IsNullOrEmpty(buildId));
        return buildId!;
    }

    /// <summary>POST /api/projects/{id}/builds/{buildId}/cancel[?by=]; returns status and body.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> CancelAsync(TestGateway gateway, string projectId, string buildId, string? by = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/builds/{buildId}/cancel" + (by is null ? string.Empty : "?by=" + Uri.EscapeDataString(by)));
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var response = await gateway.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>The field names of a 400 VALIDATION_FAILED body.</summary>
    public static List<string> Fields(JsonElement body) =>
        body.GetProperty("error").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("field").GetString()!).ToList();
}

/// <summary>Reading a client's ordered event stream up to a condition, with a deadline.</summary>
internal static class EventStream
{
    public static readonly TimeSpan BuildWait = TimeSpan.FromSeconds(30);

    /// <summary>Project events only (the envelopes: they carry a seq), in arrival order, up to and including the first that matches.</summary>
    /// <param name="clock">The runner's fake clock (<see cref="FakePacing"/>): moved while no event is there yet; null: the runner works by real time.</param>
    public static async Task<List<ReceivedEvent>> ReadUntilAsync(BuilderClient client, Func<ReceivedEvent, bool> stop, List<ReceivedEvent>? into = null, TimeSpan? wait = null, FakeTimeProvider? clock = null)
    {
        var events = into ?? [];
        using var deadline = new CancellationTokenSource(wait ?? BuildWait);
        while (true)
        {
            ReceivedEvent next;
            try
            {
                var arriving = client.NextAnyAsync(wait ?? BuildWait).WaitAsync(deadline.Token);
                next = clock is null ? await arriving : await FakePacing.DriveAsync(clock, arriving, wait ?? BuildWait);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                throw new TimeoutException($"the awaited event did not come within {(wait ?? BuildWait).TotalSeconds:0} s; received:\n" + Describe(events), ex);
            }

            if (!IsEnvelope(next))
            {
                continue;
            }

            events.Add(next);
            if (stop(next))
            {
                return events;
            }
        }
    }

    public static Task<List<ReceivedEvent>> ReadUntilAsync(BuilderClient client, string type, List<ReceivedEvent>? into = null, TimeSpan? wait = null, FakeTimeProvider? clock = null) =>
        ReadUntilAsync(client, e => e.Name == type, into, wait, clock);

    /// <summary>Reads until a build ends (completed, failed or cancelled), answering the layout decision with <paramref name="answer"/> when given.</summary>
    public static async Task<List<ReceivedEvent>> RunToEndAsync(BuilderClient client, string? answer, TimeSpan? wait = null, FakeTimeProvider? clock = null)
    {
        var events = new List<ReceivedEvent>();
        var ends = new HashSet<string>(StringComparer.Ordinal) { "build:completed", "build:failed", "build:cancelled" };
        while (true)
        {
            var last = (await ReadUntilAsync(client, e => ends.Contains(e.Name) || (answer is not null && e.Name == "user:decision:required"), events, wait, clock))[^1];
            if (last.Name != "user:decision:required")
            {
                return events;
            }

            var ack = await client.EmitWithAckAsync("user:decision:response", new { decisionId = last.Data.GetProperty("payload").GetProperty("decisionId").GetString(), selectedOptionId = answer });
            Assert.True(ack.GetProperty("ok").GetBoolean(), "the answer was refused: " + ack.GetRawText());
        }
    }

    public static bool IsEnvelope(ReceivedEvent e) =>
        e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("seq", out _) && e.Data.TryGetProperty("payload", out _);

    public static JsonElement Payload(this ReceivedEvent e) => e.Data.GetProperty("payload");

    public static long Seq(this ReceivedEvent e) => e.Data.GetProperty("seq").GetInt64();

    public static List<JsonElement> Payloads(this IEnumerable<ReceivedEvent> events, string type) =>
        events.Where(e => e.Name == type).Select(e => e.Payload()).ToList();

    public static string Describe(IEnumerable<ReceivedEvent> events) =>
        string.Join("\n", events.Select(e => $"  {e.Data.GetProperty("seq")} {e.Name} {Shorten(e.Payload().GetRawText())}"));

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
