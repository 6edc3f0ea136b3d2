using Builder.Gateway;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Builder.Tests;

/// <summary>The hub's and the sessions' limit keys are validated at start-up like the others.</summary>
public sealed class HubLimitConfigurationTests
{
    [Theory]
    [InlineData("Builder:Access:CacheSize", "0")]
    [InlineData("Builder:Limits:JoinsPerMinute", "0")]
    [InlineData("Builder:Limits:MaxConnectionsPerAddress", "0")]
    [InlineData("Builder:Limits:MaxHandshakesPerAddress", "-1")]
    [InlineData("Builder:Limits:ConnectTimeoutSeconds", "0")]
    [InlineData("Builder:Limits:MaxBufferedBytes", "1000")]
    [InlineData("Builder:Limits:WriteTimeoutSeconds", "0")]
    public void A_bad_limit_is_refused_naming_its_key(string key, string value)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = "configuration-tests-secret-0123456789-abcdef",
            ["Builder:Store:Provider"] = "memory",
            [key] = value,
        };
        var ex = Assert.Throws<OptionsValidationException>(() => GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings)));
        Assert.Contains(ex.Failures, f => f.Contains(key, StringComparison.Ordinal));
    }
}
