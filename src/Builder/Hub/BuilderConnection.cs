using Builder.Auth;

namespace Builder.Hub;

/// <summary>What the gateway keeps per /builder socket (in <c>socket.Data</c>, so it survives recovery).</summary>
public sealed class BuilderConnection : IDisposable
{
    public const string DataKey = "builder";

    private readonly Lock _gate = new();
    private double _tokens;
    private long _refilledAt;
    private double _joinTokens;
    private long _joinsRefilledAt;
    private UserConnections? _slots;
    private string? _slotUser; // the user whose connection count holds this socket (null: none held)

    public BuilderConnection(UserIdentity identity, int burst, long now, int joinBurst = int.MaxValue)
    {
        Identity = identity;
        _tokens = burst;
        _refilledAt = now;
        _joinTokens = joinBurst;
        _joinsRefilledAt = now;
    }

    public UserIdentity Identity { get; private set; }

    public ITimer? ExpiryTimer { get; set; }

    /// <summary>Whether a connected socket has used this state (a recovered socket then gets a copy).</summary>
    internal bool Attached { get; set; }

    public int MissedPongs;

    public long PingSentAt;

    /// <summary>Whether this socket is counted in its user's connections.</summary>
    internal bool HoldsSlot
    {
        get
        {
            lock (_gate)
            {
                return _slotUser is not null;
            }
        }
    }

    /// <summary>Token bucket: true when the client may send one more event now.</summary>
    public bool TryTake(double perSecond, int burst, long now, long ticksPerSecond)
    {
        lock (_gate)
        {
            return TryTake(ref _tokens, ref _refilledAt, perSecond, burst, now, ticksPerSecond);
        }
    }

    /// <summary>Token bucket of <c>join-project</c> (each may replay a log): true when one more join is allowed now.</summary>
    public bool TryTakeJoin(double perSecond, int burst, long now, long ticksPerSecond)
    {
        lock (_gate)
        {
            return TryTake(ref _joinTokens, ref _joinsRefilledAt, perSecond, burst, now, ticksPerSecond);
        }
    }

    private static bool TryTake(ref double tokens, ref long refilledAt, double perSecond, int burst, long now, long ticksPerSecond)
    {
        var elapsed = (now - refilledAt) / (double)ticksPerSecond;
        tokens = Math.Min(burst, tokens + (elapsed * perSecond));
        refilledAt = now;
        if (tokens < 1)
        {
            return false;
        }

        tokens -= 1;
        return true;
    }

    /// <summary>Counts this socket in its user's connections, in one step with the check; false when the user is at the cap.</summary>
    internal bool TryTakeSlot(UserConnections slots)
    {
        lock (_gate)
        {
            if (_slotUser is not null)
            {
                return true;
            }

            if (!slots.TryAdd(Identity.UserId))
            {
                return false;
            }

            _slots = slots;
            _slotUser = Identity.UserId;
            return true;
        }
    }

    /// <summary>Gives the socket's place in its user's count back (once; later calls do nothing).</summary>
    internal void ReleaseSlot()
    {
        lock (_gate)
        {
            if (_slotUser is not null)
            {
                _slots!.Remove(_slotUser);
                _slotUser = null;
            }
        }
    }

    /// <summary>
    /// Re-authentication: the socket becomes <paramref name="identity"/>'s, and its place in the
    /// count moves to that user; false (nothing changed) when that user is at the cap.
    /// </summary>
    internal bool TrySwitchIdentity(UserIdentity identity)
    {
        lock (_gate)
        {
            if (_slotUser is not null)
            {
                if (!_slots!.TryMove(_slotUser, identity.UserId))
                {
                    return false;
                }

                _slotUser = identity.UserId;
            }

            Identity = identity;
            return true;
        }
    }

    public void Dispose() => ExpiryTimer?.Dispose();
}

/// <summary>Open /builder sockets per user, checked and counted in one step against the cap.</summary>
internal sealed class UserConnections(int max)
{
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    public int Max => max;

    /// <summary>Users with at least one counted socket (tests).</summary>
    public int Users
    {
        get
        {
            lock (_counts)
            {
                return _counts.Count;
            }
        }
    }

    public bool TryAdd(string userId)
    {
        lock (_counts)
        {
            var n = _counts.GetValueOrDefault(userId);
            if (n >= max)
            {
                return false;
            }

            _counts[userId] = n + 1;
            return true;
        }
    }

    public void Remove(string userId)
    {
        lock (_counts)
        {
            if (_counts.TryGetValue(userId, out var n))
            {
                if (n <= 1)
                {
                    _counts.Remove(userId);
                }
                else
                {
                    _counts[userId] = n - 1;
                }
            }
        }
    }

    /// <summary>One socket changes user: false when <paramref name="to"/> is at the cap.</summary>
    public bool TryMove(string from, string to)
    {
        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            return true;
        }

        lock (_counts)
        {
            if (!TryAdd(to))
            {
                return false;
            }

            Remove(from);
            return true;
        }
    }
}
