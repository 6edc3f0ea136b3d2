using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Builder.Auth;

/// <summary>
/// Whether a user may reach a project: the token's <c>projects</c> claim lists it (or "*"), or
/// the platform's access-check URL answers yes (<c>GET {CheckUrl}?userId=..&amp;projectId=..</c> →
/// 200 with <c>{"allowed": true}</c>), cached for <see cref="AccessOptions.CacheSeconds"/>; at most
/// <see cref="AccessOptions.CacheSize"/> answers are kept (the least recently used goes first), since
/// the project ids come from clients.
/// </summary>
public sealed class ProjectAccess
{
    private readonly AccessOptions _options;
    private readonly HttpClient? _http;
    private readonly TimeProvider _time;
    private readonly ILogger<ProjectAccess> _logger;
    private readonly Dictionary<(string User, string Project), LinkedListNode<CacheEntry>> _cache = [];
    private readonly LinkedList<CacheEntry> _recency = new(); // most recently used first
    private readonly Lock _gate = new();

    public ProjectAccess(AccessOptions options, HttpClient? http, TimeProvider time, ILogger<ProjectAccess> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _http = string.IsNullOrEmpty(options.CheckUrl) ? null : http;
        _time = time;
        _logger = logger;
    }

    /// <summary>Cached answers (tests).</summary>
    internal int CacheCount
    {
        get
        {
            lock (_gate)
            {
                return _cache.Count;
            }
        }
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
        if (TryGetCached((user.UserId, projectId), now, out var cachedAllowed))
        {
            return cachedAllowed;
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

        Cache((user.UserId, projectId), allowed, now.AddSeconds(_options.CacheSeconds));
        return allowed;
    }

    private bool TryGetCached((string User, string Project) key, DateTimeOffset now, out bool allowed)
    {
        lock (_gate)
        {
            allowed = false;
            if (!_cache.TryGetValue(key, out var node))
            {
                return false;
            }

            if (node.Value.Until <= now)
            {
                _cache.Remove(key);
                _recency.Remove(node);
                return false;
            }

            _recency.Remove(node);
            _recency.AddFirst(node);
            allowed = node.Value.Allowed;
            return true;
        }
    }

    private void Cache((string User, string Project) key, bool allowed, DateTimeOffset until)
    {
        lock (_gate)
        {
            if (_cache.Remove(key, out var old))
            {
                _recency.Remove(old);
            }

            while (_cache.Count >= _options.CacheSize && _recency.Last is { } oldest)
            {
                _cache.Remove(oldest.Value.Key);
                _recency.RemoveLast();
            }

            _cache[key] = _recency.AddFirst(new CacheEntry(key, allowed, until));
        }
    }

    private sealed record CacheEntry((string User, string Project) Key, bool Allowed, DateTimeOffset Until);
}
