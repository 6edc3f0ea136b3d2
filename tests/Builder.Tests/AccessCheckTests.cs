using System.Collections.Concurrent;
using System.Net;
using Builder.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Builder.Tests;

/// <summary>The platform's access-check URL grants projects the token does not list, and is cached.</summary>
public sealed class AccessCheckTests
{
    [Fact]
    public async Task Access_check_url_grants_and_refuses_and_its_answer_is_cached()
    {
        var asked = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var platform = builder.Build();
        platform.MapGet("/access", (HttpRequest r) =>
        {
            asked.Enqueue($"{r.Query["userId"]}:{r.Query["projectId"]}");
            return Results.Json(new { allowed = r.Query["projectId"] == "shared" });
        });
        await platform.StartAsync();
        var url = platform.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Access:CheckUrl"] = url + "/access";
            s["Builder:Access:CacheSeconds"] = "30";
        });
        await using var client = gateway.Client(gateway.Token("dave", ["own"]));
        await client.ConnectAsync();

        var granted = await client.JoinAsync("shared");
        Assert.True(granted.GetProperty("ok").GetBoolean());
        var refused = await client.EmitWithAckAsync("join-project", new { projectId = "secret" });
        Assert.False(refused.GetProperty("ok").GetBoolean());
        Assert.Equal("FORBIDDEN", refused.GetProperty("error").GetProperty("code").GetString());

        // the token's own project needs no question; a repeated join is answered from the cache
        Assert.True((await client.JoinAsync("own")).GetProperty("ok").GetBoolean());
        Assert.True((await client.JoinAsync("shared")).GetProperty("ok").GetBoolean());
        Assert.Equal(["dave:shared", "dave:secret"], asked.ToArray());

        // once the cache expires the platform is asked again
        gateway.Time.Advance(TimeSpan.FromSeconds(31));
        Assert.True((await client.JoinAsync("shared")).GetProperty("ok").GetBoolean());
        Assert.Equal(3, asked.Count);
    }
}
