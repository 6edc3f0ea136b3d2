using System.Collections.Concurrent;
using System.Net;
using Builder.Auth;
using Builder.Events;
using Builder.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Builder.Tests;

/// <summary>What the gateway keeps per client-supplied id stays bounded: access answers, per-project gates.</summary>
public sealed class BoundedCacheTests
{
    [Fact]
    public async Task The_access_cache_keeps_at_most_CacheSize_answers_and_evicts_the_least_recently_used()
    {
        var asked = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var platform = builder.Build();
        platform.MapGet("/access", (HttpRequest r) =>
        {
            asked.Enqueue($"{r.Query["projectId"]}");
            return Results.Json(new { allowed = true });
        });
        await platform.StartAsync();
        var url = platform.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Access:CheckUrl"] = url + "/access";
            s["Builder:Access:CacheSize"] = "50";
        });
        var access = gateway.Services.GetRequiredService<ProjectAccess>();
        var dave = new UserIdentity("dave", "dave", ["own"], null, DateTimeOffset.MaxValue);
        const int Distinct = 1000;
        for (var i = 0; i < Distinct; i++)
        {
            Assert.True(await access.MayAccessAsync(dave, "p" + i));
            Assert.True(access.CacheCount <= 50, $"{access.CacheCount} cached answers after {i + 1} projects");
        }

        Assert.Equal(Distinct, asked.Count);

        // a recent answer is still cached; the oldest was evicted
        Assert.True(await access.MayAccessAsync(dave, "p" + (Distinct - 1)));
        Assert.Equal(Distinct, asked.Count);
        Assert.True(await access.MayAccessAsync(dave, "p0"));
        Assert.Equal(Distinct + 1, asked.Count);
    }

    [Fact]
    public async Task Per_project_gates_are_dropped_when_unused_and_publishing_order_per_project_holds()
    {
        await using var gateway = await TestGateway.StartAsync();
        var publisher = gateway.Services.GetRequiredService<EventPublisher>();
        await using var client = gateway.Client(gateway.Token("alice", ["ordered"]));
        await client.ConnectAsync();
        await client.JoinAsync("ordered");

        const int Projects = 1000;
        const int Ordered = 300;
        var progress = (int i) => new { currentPhase = "generate", phaseProgress = i % 101, overallProgress = i % 101, message = $"event {i}" };
        var tasks = new List<Task<PublishResult>>();
        for (var i = 0; i < Math.Max(Projects, Ordered); i++)
        {
            var n = i;
            if (n < Projects)
            {
                tasks.Add(Task.Run(() => publisher.PublishAsync("many-" + n, "build:progress", progress(n))));
            }

            if (n < Ordered)
            {
                tasks.Add(Task.Run(() => publisher.PublishAsync("ordered", "build:progress", progress(n))));
            }
        }

        Assert.All(await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60)), r => Assert.True(r.Ok));
        Assert.Equal(0, publisher.GateCount);

        var seqs = new List<long>();
        while (seqs.Count < Ordered)
        {
            var e = await client.NextAsync("build:progress");
            seqs.Add(e.GetProperty("seq").GetInt64());
        }

        Assert.Equal(Enumerable.Range(1, Ordered).Select(i => (long)i), seqs);
    }
}
