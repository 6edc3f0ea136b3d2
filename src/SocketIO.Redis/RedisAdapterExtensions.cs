using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SocketIO.Redis;

/// <summary>Set-up of the Redis adapter: <c>services.AddSocketIO(...).AddRedisAdapter(o => o.Configuration = "localhost:6379")</c>.</summary>
public static class RedisAdapterExtensions
{
    /// <summary>
    /// Makes every namespace of the registered Socket.IO server use the Redis adapter. The
    /// connection is <see cref="RedisAdapterOptions.Connection"/>, else an
    /// <see cref="IConnectionMultiplexer"/> registered in DI, else one made from
    /// <see cref="RedisAdapterOptions.Configuration"/> (which then must be set).
    /// </summary>
    public static IServiceCollection AddRedisAdapter(this IServiceCollection services, Action<RedisAdapterOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddSingleton(sp =>
        {
            var options = new RedisAdapterOptions();
            configure(options);
            options.Validate();
            var loggers = sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            var meters = sp.GetService<IMeterFactory>();
            var connection = options.Connection ?? sp.GetService<IConnectionMultiplexer>();
            var owned = false;
            if (connection is null)
            {
                if (string.IsNullOrWhiteSpace(options.Configuration))
                {
                    throw new InvalidOperationException("SocketIO Redis adapter: set Configuration, Connection, or register an IConnectionMultiplexer.");
                }

                connection = Connect(options.Configuration);
                owned = true;
            }

            return new RedisAdapterRuntime(connection, options, loggers, owned, meters);
        });
        services.AddSingleton<IConfigureOptions<SocketIOOptions>>(sp => new ConfigureOptions<SocketIOOptions>(o => sp.GetRequiredService<RedisAdapterRuntime>().Apply(o)));

        // the main namespace joins the cluster at start-up (else at its first connection)
        services.AddSingleton<IHostedService>(sp => new MainNamespaceStarter(sp.GetRequiredService<SocketIOServer>()));
        return services;
    }

    /// <summary>
    /// Makes every namespace of the server use the Redis adapter (see the
    /// <see cref="IServiceCollection"/> overload): <c>services.AddSocketIO().AddRedisAdapter(...)</c>.
    /// </summary>
    public static ISocketIOServerBuilder AddRedisAdapter(this ISocketIOServerBuilder builder, Action<RedisAdapterOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddRedisAdapter(configure);
        return builder;
    }

    /// <summary>
    /// Uses the Redis adapter for every namespace of a server built from <paramref name="options"/>
    /// (without DI); its metrics go to <paramref name="meters"/>' meter, else to a process-wide one.
    /// </summary>
    public static SocketIOOptions UseRedisAdapter(this SocketIOOptions options, IConnectionMultiplexer connection, Action<RedisAdapterOptions>? configure = null, ILoggerFactory? loggers = null, IMeterFactory? meters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(connection);
        var adapterOptions = new RedisAdapterOptions { Connection = connection };
        configure?.Invoke(adapterOptions);
        adapterOptions.Validate();
        new RedisAdapterRuntime(connection, adapterOptions, loggers ?? NullLoggerFactory.Instance, owned: false, meters).Apply(options);
        return options;
    }

    /// <summary>
    /// A connection that does not fail start-up when Redis is down and does not queue commands
    /// while it is (a broadcast is delivered locally and its publish dropped, not replayed late).
    /// </summary>
    public static ConnectionMultiplexer Connect(string configuration)
    {
        var config = ConfigurationOptions.Parse(configuration);
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        return ConnectionMultiplexer.Connect(config);
    }

    private sealed class MainNamespaceStarter(SocketIOServer server) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            _ = server.Sockets.Adapter;
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>
/// The connection shared by the namespaces' adapters; logs its losses and returns, counts them
/// and the adapters' dropped publishes (metrics, health check).
/// </summary>
internal sealed class RedisAdapterRuntime : IDisposable
{
    private readonly IConnectionMultiplexer _connection;
    private readonly RedisAdapterOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly bool _owned;
    private readonly RedisAdapterMetrics _metrics;
    private long _publishFailures;
    private int _down;

    public RedisAdapterRuntime(IConnectionMultiplexer connection, RedisAdapterOptions options, ILoggerFactory loggers, bool owned, IMeterFactory? meters = null)
    {
        _connection = connection;
        _options = options;
        _loggers = loggers;
        _owned = owned;
        _log = loggers.CreateLogger<RedisAdapter>();
        _metrics = RedisAdapterMetrics.Create(meters);
        _metrics.Track(connection);
        connection.ConnectionFailed += OnFailed;
        connection.ConnectionRestored += OnRestored;
    }

    /// <summary>Whether the Redis connection is up.</summary>
    public bool IsConnected => _connection.IsConnected;

    /// <summary>Publishes dropped by all the namespaces' adapters.</summary>
    public long PublishFailures => Interlocked.Read(ref _publishFailures);

    public void Apply(SocketIOOptions options) =>
        options.AdapterFactory = nsp => new RedisAdapter(nsp, _connection, _options, _loggers.CreateLogger<RedisAdapter>()) { PublishFailed = OnPublishFailed };

    private void OnPublishFailed()
    {
        Interlocked.Increment(ref _publishFailures);
        _metrics.PublishFailed();
    }

    private void OnFailed(object? sender, ConnectionFailedEventArgs e)
    {
        // one outage fails both connections (interactive, subscription) and each reconnect attempt: count it once
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            _metrics.ConnectionLost();
        }

        _log.LogWarning(e.Exception, "Redis connection lost ({FailureType}, {Endpoint}): broadcasts reach local sockets only until it returns", e.FailureType, e.EndPoint);
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e)
    {
        Volatile.Write(ref _down, 0);
        _log.LogInformation("Redis connection restored ({Endpoint}): subscriptions renewed", e.EndPoint);
    }

    public void Dispose()
    {
        _connection.ConnectionFailed -= OnFailed;
        _connection.ConnectionRestored -= OnRestored;
        _metrics.Untrack(_connection);
        if (_owned)
        {
            _connection.Dispose();
        }
    }
}
