using System.Net;
using EngineIO;

namespace SocketIO.Tests.Server;

/// <summary>The per-address counts behind <see cref="EngineIOOptions.MaxConnectionsPerAddress"/> and <see cref="EngineIOOptions.MaxHandshakesPerAddress"/>.</summary>
public sealed class AddressLimiterTests
{
    [Fact]
    public void Ipv6_CountsBySlash64_MappedIpv4_AsIpv4_AndNoAddress_IsNotLimited()
    {
        var limiter = new AddressLimiter(maxConnections: 2, maxHandshakes: 0);
        Assert.Null(limiter.TryAdmit(IPAddress.Parse("2001:db8::1")));
        Assert.Null(limiter.TryAdmit(IPAddress.Parse("2001:db8::2")));
        Assert.Same(AddressLimiter.TooManyConnections, limiter.TryAdmit(IPAddress.Parse("2001:db8::ffff:1")));
        Assert.Null(limiter.TryAdmit(IPAddress.Parse("2001:db8:0:1::1")));

        Assert.Null(limiter.TryAdmit(IPAddress.Parse("127.0.0.1")));
        Assert.Null(limiter.TryAdmit(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.Same(AddressLimiter.TooManyConnections, limiter.TryAdmit(IPAddress.Loopback));
        Assert.Null(limiter.TryAdmit(null));

        limiter.Abandon(IPAddress.Parse("2001:db8::1"));
        Assert.Null(limiter.TryAdmit(IPAddress.Parse("2001:db8::3")));
    }

    [Fact]
    public void ASession_HandshakesUntilEstablished_AndCountsAsAConnectionUntilClosed()
    {
        var limiter = new AddressLimiter(maxConnections: 3, maxHandshakes: 1);
        var address = IPAddress.Parse("10.0.0.1");
        Assert.Null(limiter.TryAdmit(address));
        limiter.Opened("s1");
        Assert.Same(AddressLimiter.TooManyHandshakes, limiter.TryAdmit(address));

        limiter.Established("s1", address);
        limiter.Established("s1", address); // once only
        Assert.Null(limiter.TryAdmit(address));
        limiter.Opened("s2");
        limiter.Closed("s2", address); // closed while handshaking: both counts given back
        Assert.Null(limiter.TryAdmit(address));
        limiter.Opened("s3");
        limiter.Established("s3", address);
        Assert.Null(limiter.TryAdmit(address));
        limiter.Opened("s4");
        limiter.Established("s4", address);
        Assert.Same(AddressLimiter.TooManyConnections, limiter.TryAdmit(address));

        limiter.Closed("s1", address);
        limiter.Closed("s3", address);
        limiter.Closed("s4", address);
        Assert.Equal(0, limiter.Addresses);
    }
}
