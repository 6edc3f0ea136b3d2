using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Builder.Cli;

/// <summary>
/// The gateway's producer API (<c>/api/...</c>) with a producer credential: <c>X-Api-Key</c>, or
/// a JWT of role agent/service as <c>Authorization: Bearer</c>. Answers are returned as JSON; a
/// refusal becomes a <see cref="CliException"/> with the gateway's code and an exit code of its own.
/// </summary>
public sealed class ProducerApi(GatewayAddress address, string? apiKey, string? bearer, TimeSpan timeout) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = timeout };

    public Task<JsonElement> PostAsync(string relative, JsonElement body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, relative, body.GetRawText(), cancellationToken);

    public async Task<JsonElement> SendAsync(HttpMethod method, string relative, string? body, CancellationToken cancellationToken)
    {
        if (apiKey is null && bearer is null)
        {
            throw new CliException(ExitCodes.BadArgument, "A producer credential is required: --api-key (or BUILDER_API_KEY), or --token with a token of role agent or service (or BUILDER_TOKEN).");
        }

        using var request = new HttpRequestMessage(method, address.Http(relative));
        if (apiKey is not null)
        {
            request.Headers.Add("X-Api-Key", apiKey);
        }
        else
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            var reason = ex.InnerException is SocketException s ? s.Message : ex.Message;
            throw new CliException(ExitCodes.Unreachable, $"The gateway at {address.Server} is unreachable: {reason}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unreachable, $"The gateway at {address.Server} did not answer within {timeout.TotalSeconds:0} s");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonElement json;
            try
            {
                json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
                throw new CliException(ExitCodes.Failed, $"{method} {relative}: {(int)response.StatusCode} {response.ReasonPhrase} (not JSON: {Shorten(text)})");
            }

            if (response.IsSuccessStatusCode)
            {
                return json;
            }

            var code = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("error", out var error) && error.TryGetProperty("code", out var c) ? c.GetString() : null;
            var message = code is not null && json.GetProperty("error").TryGetProperty("message", out var m) ? m.GetString() : Shorten(text);
            var fields = code is not null && json.GetProperty("error").TryGetProperty("fields", out var f) && f.ValueKind == JsonValueKind.Array
                ? string.Concat(f.EnumerateArray().Select(x => $"\n  {x.GetProperty("field").GetString()}: {x.GetProperty("message").GetString()}"))
                : string.Empty;
            var exit = response.StatusCode switch
            {
                System.Net.HttpStatusCode.Unauthorized => ExitCodes.AuthRefused,
                System.Net.HttpStatusCode.Forbidden => code == "NOT_A_PRODUCER" ? ExitCodes.AuthRefused : ExitCodes.Forbidden,
                _ => ExitCodes.Failed,
            };
            throw new CliException(exit, $"{method} {relative}: {(int)response.StatusCode} {code}: {message}{fields}", code);
        }
    }

    private static string Shorten(string text) => text.Length > 200 ? text[..200] + "..." : text;

    public void Dispose() => _http.Dispose();
}
