using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Builder.Auth;

/// <summary>
/// Whether a user may reach a project: the token's <c>projects</c> claim lists it (or "*"), or
/// the platform's access-check URL answers yes (<c>GET {CheckUrl}?userId=..&amp;projectId=..</c> →
/// 200 with <c>{"allowed": true}</c>), cached for <see cref="AccessOptions.CacheSeconds"/>.
/// </summary>
public sealed class ProjectAccess
{
    private readonly AccessOptions _options;
    private readonly HttpClient? _http;
    private readonly TimeProvider _time;
    private readonly ILogger<ProjectAccess> _logger;
    private readonly ConcurrentDictionary<(string User, string Project), (bool Allowed, DateTimeOffset Until)> _cache = new();

    public ProjectAccess(AccessOptions options, HttpClient? http, TimeProvider time, ILogger<ProjectAccess> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _http = string.IsNullOrEmpty(options.CheckUrl) ? null : http;
        _time = time;
        _logger = logger;
    }

    public async Task<bool> MayAccessAsync(UserIdentity user, string projectId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.MayAccess(projectId))
        {
            return true;
        }

        if (_http is null)
        {
            return false;
        }

        var now = _time.GetUtcNow();
        if (_cache.TryGetValue((user.UserId, projectId), out var cached) && cached.Until > now)
        {
            return cached.Allowed;
        }

        var allowed = false;
        try
        {
            var url = $"{_options.CheckUrl}?userId={Uri.EscapeDataString(user.UserId)}&projectId={Uri.EscapeDataString(projectId)}";
            using var response = await _http.GetAsync(new Uri(url), cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
                allowed = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("allowed", out var a) && a.ValueKind == JsonValueKind.True;
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or TaskCanceledException)
        {
            // fail closed: an unreachable platform grants nothing
            _logger.LogWarning(ex, "Access check for user {UserId} on project {ProjectId} failed", user.UserId, projectId);
            return false;
        }

        _cache[(user.UserId, projectId)] = (allowed, now.AddSeconds(_options.CacheSeconds));
        return allowed;
    }
}
