using StackExchange.Redis;

namespace Builder.Events;

/// <summary>
/// A subscription of a cluster store: taken at construction without blocking, retried every second
/// while Redis is unreachable (the node's shared connection does not wait for Redis at start-up),
/// dropped on dispose.
/// </summary>
internal sealed class RedisSubscription : IDisposable
{
    private readonly ISubscriber _subscriber;
    private readonly RedisChannel _channel;
    private readonly Action<RedisChannel, RedisValue> _handler;
    private readonly CancellationTokenSource _stop = new();

    public RedisSubscription(IConnectionMultiplexer redis, RedisChannel channel, Action<RedisChannel, RedisValue> handler)
    {
        _subscriber = redis.GetSubscriber();
        _channel = channel;
        _handler = handler;
        Subscribed = SubscribeAsync();
    }

    /// <summary>Completes once the subscription is in place (or the subscription is disposed).</summary>
    public Task Subscribed { get; }

    private async Task SubscribeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _subscriber.SubscribeAsync(_channel, _handler);
                return;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                try
                {
                    await _subscriber.UnsubscribeAsync(_channel, _handler);
                }
                catch (Exception again) when (again is RedisException or TimeoutException)
                {
                    // still unreachable: the next attempt subscribes afresh
                }

                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _subscriber.Unsubscribe(_channel, _handler, CommandFlags.FireAndForget);
        }
        catch (RedisException)
        {
            // the connection is gone with the subscription
        }

        _stop.Dispose();
    }
}
