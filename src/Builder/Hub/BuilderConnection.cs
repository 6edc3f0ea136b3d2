using Builder.Auth;

namespace Builder.Hub;

/// <summary>What the gateway keeps per /builder socket (in <c>socket.Data</c>, so it survives recovery).</summary>
public sealed class BuilderConnection : IDisposable
{
    public const string DataKey = "builder";

    private readonly Lock _gate = new();
    private double _tokens;
    private long _refilledAt;

    public BuilderConnection(UserIdentity identity, int burst, long now)
    {
        Identity = identity;
        _tokens = burst;
        _refilledAt = now;
    }

    public UserIdentity Identity { get; set; }

    public ITimer? ExpiryTimer { get; set; }

    public int MissedPongs;

    public long PingSentAt;

    /// <summary>Token bucket: true when the client may send one more event now.</summary>
    public bool TryTake(double perSecond, int burst, long now, long ticksPerSecond)
    {
        lock (_gate)
        {
            var elapsed = (now - _refilledAt) / (double)ticksPerSecond;
            _tokens = Math.Min(burst, _tokens + (elapsed * perSecond));
            _refilledAt = now;
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    public void Dispose() => ExpiryTimer?.Dispose();
}
