namespace Builder;

/// <summary>The "Builder" configuration section.</summary>
public sealed class BuilderOptions
{
    public const string Section = "Builder";

    public JwtOptions Jwt { get; set; } = new();

    public CorsSettings Cors { get; set; } = new();

    public HeartbeatOptions Heartbeat { get; set; } = new();

    public StoreOptions Store { get; set; } = new();

    public RedisOptions Redis { get; set; } = new();

    public ClusterOptions Cluster { get; set; } = new();

    public IngestOptions Ingest { get; set; } = new();

    public ProducerOptions Producers { get; set; } = new();

    public AccessOptions Access { get; set; } = new();

    public LimitOptions Limits { get; set; } = new();

    public DevOptions Dev { get; set; } = new();

    public Runner.RunnerOptions Runner { get; set; } = new();

    public MemoryOptions Memory { get; set; } = new();

    public PreviewOptions Preview { get; set; } = new();

    public MetricsOptions Metrics { get; set; } = new();

    public TelemetryOptions Telemetry { get; set; } = new();

    public EngineSettings Engine { get; set; } = new();

    /// <summary>Checks every key; returns the problems, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        var hasSecret = !string.IsNullOrEmpty(Jwt.Secret);
        var hasKey = !string.IsNullOrEmpty(Jwt.PublicKeyFile) || !string.IsNullOrEmpty(Jwt.JwksFile);
        if (!hasSecret && !hasKey)
        {
            errors.Add("Builder:Jwt:Secret (or Builder:Jwt:PublicKeyFile / Builder:Jwt:JwksFile) must be set.");
        }

        if (hasSecret && System.Text.Encoding.UTF8.GetByteCount(Jwt.Secret!) < 32)
        {
            errors.Add("Builder:Jwt:Secret must be at least 32 bytes long.");
        }

        if (!string.IsNullOrEmpty(Jwt.PublicKeyFile) && !File.Exists(Jwt.PublicKeyFile))
        {
            errors.Add($"Builder:Jwt:PublicKeyFile: file '{Jwt.PublicKeyFile}' does not exist.");
        }

        if (!string.IsNullOrEmpty(Jwt.JwksFile) && !File.Exists(Jwt.JwksFile))
        {
            errors.Add($"Builder:Jwt:JwksFile: file '{Jwt.JwksFile}' does not exist.");
        }

        ValidateAlgorithms(errors, hasSecret);

        if (Cors.Origins.Length == 0 || Cors.Origins.Any(o => string.IsNullOrWhiteSpace(o) || (o != "*" && !Uri.TryCreate(o, UriKind.Absolute, out _))))
        {
            errors.Add("Builder:Cors:Origins must list absolute origins such as http://localhost:12000 (or \"*\").");
        }

        if (Heartbeat.IntervalSeconds <= 0)
        {
            errors.Add("Builder:Heartbeat:IntervalSeconds must be positive.");
        }

        if (Heartbeat.MaxMissed < 1)
        {
            errors.Add("Builder:Heartbeat:MaxMissed must be at least 1.");
        }

        if (Store.Provider is not (null or "sqlite" or "memory" or "redis"))
        {
            errors.Add($"Builder:Store:Provider must be \"sqlite\", \"memory\" or \"redis\" (got \"{Store.Provider}\").");
        }

        if (StoreProvider == "sqlite" && string.IsNullOrWhiteSpace(Store.Path))
        {
            errors.Add("Builder:Store:Path must be set for the sqlite store.");
        }

        if (Store.Durability is not ("normal" or "full"))
        {
            errors.Add($"Builder:Store:Durability must be \"normal\" or \"full\" (got \"{Store.Durability}\").");
        }

        if (Producers.MaxBatchEvents is < 1 or > 10_000)
        {
            errors.Add("Builder:Producers:MaxBatchEvents must be between 1 and 10000.");
        }

        if (Store.MaxEventsPerProject < 100)
        {
            errors.Add("Builder:Store:MaxEventsPerProject must be at least 100.");
        }

        ValidateCluster(errors);

        if (Ingest.ApiKeys.Any(k => k is null || k.Length < 16))
        {
            errors.Add("Builder:Ingest:ApiKeys entries must be at least 16 characters long.");
        }

        if (!string.IsNullOrEmpty(Access.CheckUrl) && !Uri.TryCreate(Access.CheckUrl, UriKind.Absolute, out _))
        {
            errors.Add("Builder:Access:CheckUrl must be an absolute URL.");
        }

        if (Access.CacheSize < 1)
        {
            errors.Add("Builder:Access:CacheSize must be at least 1.");
        }

        if (Limits.MaxEventBytes < 1024)
        {
            errors.Add("Builder:Limits:MaxEventBytes must be at least 1024.");
        }

        if (Limits.MaxConnectionsPerUser < 1)
        {
            errors.Add("Builder:Limits:MaxConnectionsPerUser must be at least 1.");
        }

        if (Limits.MaxConnectionsPerAddress < 1)
        {
            errors.Add("Builder:Limits:MaxConnectionsPerAddress must be at least 1.");
        }

        if (Limits.MaxHandshakesPerAddress < 1)
        {
            errors.Add("Builder:Limits:MaxHandshakesPerAddress must be at least 1.");
        }

        if (!(Limits.ConnectTimeoutSeconds > 0))
        {
            errors.Add("Builder:Limits:ConnectTimeoutSeconds must be positive.");
        }

        if (Limits.MaxBufferedBytes < 64 * 1024)
        {
            errors.Add("Builder:Limits:MaxBufferedBytes must be at least 65536.");
        }

        if (!(Limits.WriteTimeoutSeconds > 0))
        {
            errors.Add("Builder:Limits:WriteTimeoutSeconds must be positive.");
        }

        if (Limits.JoinsPerMinute < 1)
        {
            errors.Add("Builder:Limits:JoinsPerMinute must be at least 1.");
        }

        if (Limits.ClientEventsPerSecond <= 0)
        {
            errors.Add("Builder:Limits:ClientEventsPerSecond must be positive.");
        }

        if (Runner.MaxConcurrentBuilds < 1)
        {
            errors.Add("Builder:Runner:MaxConcurrentBuilds must be at least 1.");
        }

        if (Runner.MaxRetries < 0)
        {
            errors.Add("Builder:Runner:MaxRetries must not be negative.");
        }

        if (Runner.AgentLeaseSeconds < 1)
        {
            errors.Add("Builder:Runner:AgentLeaseSeconds must be at least 1.");
        }

        if (Runner.BuildLeaseSeconds is < 3 or > 3600)
        {
            errors.Add("Builder:Runner:BuildLeaseSeconds must be between 3 and 3600.");
        }

        if (Runner.ProgressEventsPerSecond <= 0)
        {
            errors.Add("Builder:Runner:ProgressEventsPerSecond must be positive.");
        }

        if (Preview.LinkSeconds is < 1 or > PreviewOptions.MaxLinkSeconds)
        {
            errors.Add($"Builder:Preview:LinkSeconds must be between 1 and {PreviewOptions.MaxLinkSeconds} (30 days).");
        }

        if (Preview.MaxEvents is < 1 or > PreviewOptions.MaxMaxEvents)
        {
            errors.Add($"Builder:Preview:MaxEvents must be between 1 and {PreviewOptions.MaxMaxEvents}.");
        }

        if (Metrics.Port is < 1 or > 65535)
        {
            errors.Add("Builder:Metrics:Port must be a port number between 1 and 65535.");
        }

        if (Metrics.Token is { } metricsToken && metricsToken.Length < 16)
        {
            errors.Add("Builder:Metrics:Token must be at least 16 characters long.");
        }

        if (Telemetry.OtlpEndpoint is { Length: > 0 } otlp
            && (!Uri.TryCreate(otlp, UriKind.Absolute, out var otlpUri) || otlpUri.Scheme is not ("http" or "https")))
        {
            errors.Add($"Builder:Telemetry:OtlpEndpoint must be an absolute http(s) URL (got \"{otlp}\").");
        }

        if (Telemetry.OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            errors.Add($"Builder:Telemetry:OtlpProtocol must be grpc or http/protobuf (got \"{Telemetry.OtlpProtocol}\").");
        }

        return errors;
    }

    /// <summary>Whether this gateway is a cluster node: Redis configured and <c>Cluster:Enabled</c> not false.</summary>
    public bool IsClusterNode => HasRedis && Cluster.Enabled != false;

    private bool HasRedis => !string.IsNullOrWhiteSpace(Redis.Configuration);

    /// <summary>The store in use: <c>Store:Provider</c>, else <c>redis</c> on a cluster node and <c>sqlite</c> otherwise.</summary>
    public string StoreProvider => Store.Provider ?? (IsClusterNode ? "redis" : "sqlite");

    /// <summary>The combinations of Redis, cluster and store that would split a project between nodes are refused.</summary>
    private void ValidateCluster(List<string> errors)
    {
        if (Cluster.Enabled == true && !HasRedis)
        {
            errors.Add("Builder:Cluster:Enabled is true but Builder:Redis:Configuration is not set: a cluster node needs Redis.");
        }

        if (IsClusterNode && Store.Provider is "sqlite" or "memory")
        {
            errors.Add($"Builder:Store:Provider \"{Store.Provider}\" keeps the event log on this node only, but Builder:Redis:Configuration makes it a cluster node whose projects are shared: "
                + "remove Builder:Store:Provider (or set it to \"redis\"), or declare a single node with Builder:Cluster:Enabled=false.");
        }

        if (Store.Provider == "redis" && !HasRedis)
        {
            errors.Add("Builder:Store:Provider \"redis\" needs Builder:Redis:Configuration.");
        }

        if (Store.Provider == "redis" && HasRedis && Cluster.Enabled == false)
        {
            errors.Add("Builder:Store:Provider \"redis\" is the store of a cluster node, but Builder:Cluster:Enabled is false: remove one of the two.");
        }

        if (string.IsNullOrWhiteSpace(Redis.AdapterKey) || Redis.AdapterKey.Contains('#', StringComparison.Ordinal))
        {
            errors.Add("Builder:Redis:AdapterKey must be non-empty and must not contain '#'.");
        }

        if (Cluster.IngestLeaseSeconds is < 1 or > 300)
        {
            errors.Add("Builder:Cluster:IngestLeaseSeconds must be between 1 and 300.");
        }

        if (Engine.Cookie is { } cookie && (string.IsNullOrWhiteSpace(cookie) || cookie.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))))
        {
            errors.Add("Builder:Engine:Cookie must be a cookie name of letters, digits, '-', '_' or '.' (e.g. \"io\").");
        }

        if (Engine.CookieSameSite is not ("Lax" or "Strict" or "None"))
        {
            errors.Add($"Builder:Engine:CookieSameSite must be \"Lax\", \"Strict\" or \"None\" (got \"{Engine.CookieSameSite}\").");
        }
    }

    private void ValidateAlgorithms(List<string> errors, bool hasSecret)
    {
        var listed = Jwt.AlgorithmList();
        if (listed.Count == 0)
        {
            return;
        }

        foreach (var unknown in listed.Where(a => !Auth.TokenValidator.KnownAlgorithms.Contains(a)))
        {
            errors.Add($"Builder:Jwt:Algorithms: \"{unknown}\" is not supported (use HS256, RS256 or ES256).");
        }

        if (listed.Contains("HS256") && !hasSecret)
        {
            errors.Add("Builder:Jwt:Algorithms lists HS256 but Builder:Jwt:Secret is not set.");
        }

        var asymmetric = listed.Where(a => a is "RS256" or "ES256").ToList();
        if (asymmetric.Count == 0 || (!string.IsNullOrEmpty(Jwt.PublicKeyFile) && !File.Exists(Jwt.PublicKeyFile)) || (!string.IsNullOrEmpty(Jwt.JwksFile) && !File.Exists(Jwt.JwksFile)))
        {
            return;
        }

        IReadOnlyList<(string Algorithm, Microsoft.IdentityModel.Tokens.SecurityKey Key)> keys;
        try
        {
            keys = Auth.TokenValidator.LoadKeys(Jwt);
        }
        catch (Exception ex) when (ex is ArgumentException or System.Security.Cryptography.CryptographicException or IOException or System.Text.Json.JsonException)
        {
            errors.Add($"Builder:Jwt:PublicKeyFile / Builder:Jwt:JwksFile: the key cannot be read ({ex.Message}).");
            return;
        }

        foreach (var algorithm in asymmetric.Where(a => keys.All(k => k.Algorithm != a)))
        {
            errors.Add($"Builder:Jwt:Algorithms lists {algorithm} but no {algorithm} key is configured in Builder:Jwt:PublicKeyFile or Builder:Jwt:JwksFile.");
        }
    }
}

public sealed class JwtOptions
{
    /// <summary>HS256 shared secret (at least 32 bytes).</summary>
    public string? Secret { get; set; }

    /// <summary>PEM file with an RSA or EC public key (RS256 / ES256).</summary>
    public string? PublicKeyFile { get; set; }

    /// <summary>JWKS file (RS256 / ES256 keys).</summary>
    public string? JwksFile { get; set; }

    public string? Issuer { get; set; }

    public string? Audience { get; set; }

    /// <summary>
    /// The accepted algorithms, comma-separated (HS256, RS256, ES256), e.g. "HS256,RS256"; unset:
    /// exactly the algorithms of the configured keys. Each listed algorithm needs its key.
    /// </summary>
    public string? Algorithms { get; set; }

    /// <summary>The entries of <see cref="Algorithms"/>, trimmed (empty when unset).</summary>
    public IReadOnlyList<string> AlgorithmList() =>
        (Algorithms ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public int ClockSkewSeconds { get; set; } = 30;
}

public sealed class CorsSettings
{
    public string[] Origins { get; set; } = ["http://localhost:12000"];
}

public sealed class HeartbeatOptions
{
    public int IntervalSeconds { get; set; } = 30;

    public int MaxMissed { get; set; } = 2;
}

public sealed class StoreOptions
{
    /// <summary><c>sqlite</c>, <c>memory</c> or <c>redis</c>; unset: <c>redis</c> on a cluster node, else <c>sqlite</c>.</summary>
    public string? Provider { get; set; }

    public string Path { get; set; } = "data/builder.db";

    /// <summary>Events kept per project by the redis store (older ones are trimmed; a lastSeq before them gets a snapshot).</summary>
    public int MaxEventsPerProject { get; set; } = 100_000;

    /// <summary>
    /// The sqlite store's commits: <c>normal</c> (WAL, synchronous=NORMAL: an answered event
    /// survives the process's crash) or <c>full</c> (synchronous=FULL: every commit is fsynced,
    /// it survives a machine crash too). See docs/architecture.md.
    /// </summary>
    public string Durability { get; set; } = "normal";
}

public sealed class RedisOptions
{
    /// <summary>A StackExchange.Redis configuration string; set, it makes the gateway a cluster node (see <see cref="ClusterOptions"/>).</summary>
    public string? Configuration { get; set; }

    /// <summary>The Socket.IO Redis adapter's channel prefix (Node's <c>key</c>), the same on every node.</summary>
    public string AdapterKey { get; set; } = "socket.io";
}

/// <summary>Several gateway nodes on one Redis (section Builder:Cluster).</summary>
public sealed class ClusterOptions
{
    /// <summary>Unset: a cluster node whenever Builder:Redis:Configuration is set; false: a single node that uses Redis for ingest only.</summary>
    public bool? Enabled { get; set; }

    /// <summary>How long the node consuming the Redis ingest channel holds its lease; another node takes over within this after it dies.</summary>
    public int IngestLeaseSeconds { get; set; } = 10;
}

/// <summary>Engine.IO options of the gateway (section Builder:Engine).</summary>
public sealed class EngineSettings
{
    /// <summary>The name of the sticky-session cookie set on the handshake (Node's <c>cookie</c> option, e.g. <c>io</c>); unset: no cookie.</summary>
    public string? Cookie { get; set; }

    /// <summary>The cookie's SameSite attribute: Lax (default), Strict or None.</summary>
    public string CookieSameSite { get; set; } = "Lax";
}

public sealed class IngestOptions
{
    public string[] ApiKeys { get; set; } = [];
}

/// <summary>The producers' API (section Builder:Producers).</summary>
public sealed class ProducerOptions
{
    /// <summary>Most events one <c>POST /api/projects/{id}/events</c> may carry as a JSON array.</summary>
    public int MaxBatchEvents { get; set; } = 100;
}

public sealed class AccessOptions
{
    /// <summary>Optional platform URL asked whether a user may access a project.</summary>
    public string? CheckUrl { get; set; }

    public int CacheSeconds { get; set; } = 30;

    /// <summary>Most access answers kept (least recently used evicted first).</summary>
    public int CacheSize { get; set; } = 10_000;
}

public sealed class LimitOptions
{
    public int MaxEventBytes { get; set; } = 256 * 1024;

    public double ClientEventsPerSecond { get; set; } = 50;

    public int ClientEventBurst { get; set; } = 100;

    /// <summary>Sockets one user may have open on /builder at once (tabs, devices).</summary>
    public int MaxConnectionsPerUser { get; set; } = 50;

    /// <summary>Engine.IO sessions one client address (IPv6: one /64) may have open at once.</summary>
    public int MaxConnectionsPerAddress { get; set; } = 1000;

    /// <summary>Sessions one client address may have that have not joined /builder yet (each lives at most <see cref="ConnectTimeoutSeconds"/>).</summary>
    public int MaxHandshakesPerAddress { get; set; } = 100;

    /// <summary>How long a session may take to join /builder before it is closed.</summary>
    public double ConnectTimeoutSeconds { get; set; } = 20;

    /// <summary><c>join-project</c> requests one socket may make per minute (each may replay the log); a burst of as many.</summary>
    public int JoinsPerMinute { get; set; } = 30;

    /// <summary>
    /// Bytes one connection may have waiting to be sent (a viewer that does not read); over it the
    /// session is closed ("transport error") and the client reconnects and resumes with lastSeq.
    /// </summary>
    public int MaxBufferedBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How long one write to a client may take before its connection is cut.</summary>
    public double WriteTimeoutSeconds { get; set; } = 30;
}

public sealed class MemoryOptions
{
    /// <summary>
    /// Whether the process gives memory back once it has grown (a reconnect storm) and gone quiet:
    /// one full compacting collection, a pause of about 150 ms with 10 000 connections
    /// (<c>EngineIO.IdleMemoryTrimmer</c>, docs/architecture.md "Memory after bursts").
    /// </summary>
    public bool IdleTrim { get; set; } = true;
}

public sealed class DevOptions
{
    public bool Enabled { get; set; }
}

/// <summary>The <c>/preview/{projectId}</c> page (section Builder:Preview).</summary>
public sealed class PreviewOptions
{
    public const int MaxLinkSeconds = 30 * 24 * 3600;

    public const int MaxMaxEvents = 1_000_000;

    /// <summary>How long the signed previewUrl of build:completed stays valid.</summary>
    public int LinkSeconds { get; set; } = 3600;

    /// <summary>The page is built from at most this many of the project's latest events.</summary>
    public int MaxEvents { get; set; } = 5000;
}

/// <summary>OpenTelemetry export (section Builder:Telemetry); metrics are always served at /metrics.</summary>
public sealed class TelemetryOptions
{
    /// <summary>
    /// Where metrics and traces are exported over OTLP; unset: the standard OTEL_EXPORTER_OTLP_ENDPOINT
    /// when that is set, else no OTLP export.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>The OTLP protocol of <see cref="OtlpEndpoint"/>: <c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Records traces (the publish spans, incoming HTTP requests) even without an OTLP endpoint (tests, in-process exporters).</summary>
    public bool Tracing { get; set; }
}

/// <summary>Who may read <c>/metrics</c> (section Builder:Metrics); unset: anyone on the main port.</summary>
public sealed class MetricsOptions
{
    /// <summary>When set, /metrics answers only on this port (also listened on), and 404 on the main port.</summary>
    public int? Port { get; set; }

    /// <summary>When set, /metrics needs <c>Authorization: Bearer &lt;token&gt;</c> (401 otherwise); at least 16 characters.</summary>
    public string? Token { get; set; }
}
