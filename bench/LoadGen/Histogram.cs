using System.Numerics;

namespace LoadGen;

/// <summary>
/// A log-linear histogram of microsecond values: exact below 128 µs, then 64 buckets per power
/// of two (under 1.6 % relative error). One per worker thread, merged by the orchestrator.
/// </summary>
internal sealed class Histogram
{
    private const int Linear = 128;
    private const int SubBuckets = 64;
    private const int Buckets = Linear + (40 * SubBuckets);
    private readonly long[] _counts = new long[Buckets];

    public long Count { get; private set; }

    public void Reset()
    {
        Array.Clear(_counts);
        Count = 0;
    }

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }

        _counts[Index(micros)]++;
        Count++;
    }

    public void Add(Histogram other)
    {
        for (var i = 0; i < Buckets; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
    }

    /// <summary>The value (µs, bucket midpoint) at quantile q in [0, 1]; NaN when empty.</summary>
    public double Quantile(double q)
    {
        if (Count == 0)
        {
            return double.NaN;
        }

        var rank = (long)Math.Ceiling(q * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < Buckets; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Mid(i);
            }
        }

        return Mid(Buckets - 1);
    }

    private static int Index(long v)
    {
        if (v < Linear)
        {
            return (int)v;
        }

        var msb = 63 - BitOperations.LeadingZeroCount((ulong)v);
        var shift = msb - 6;
        var idx = Linear + ((msb - 7) * SubBuckets) + (int)((v >> shift) - SubBuckets);
        return Math.Min(idx, Buckets - 1);
    }

    private static double Mid(int idx)
    {
        if (idx < Linear)
        {
            return idx;
        }

        var k = idx - Linear;
        var shift = (k / SubBuckets) + 1;
        var low = (long)((k % SubBuckets) + SubBuckets) << shift;
        return low + ((1L << shift) / 2.0);
    }
}
