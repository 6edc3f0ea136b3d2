using System.Net;
using Builder.Runner;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Runner;

/// <summary>Builder:Runner:MaxConcurrentBuilds: a node refuses a build over its limit with 503 TOO_MANY_BUILDS and Retry-After, and takes one again once a build ended.</summary>
public sealed class BuildLimitTests
{
    [Fact]
    public async Task Build_over_the_node_limit_is_refused_with_503_and_retry_after_then_accepted_once_one_ended()
    {
        // on the runner's fake clock, which stands still: the accepted builds stay running
        await using var gateway = await FakePacing.StartGatewayAsync(s => s["Builder:Runner:MaxConcurrentBuilds"] = "2");
        var runner = gateway.Services.GetRequiredService<BuildRunner>();
        var first = await BuildApi.StartAsync(gateway, "limit-a", speed: FakePacing.Speed);
        await BuildApi.StartAsync(gateway, "limit-b", speed: FakePacing.Speed);
        Assert.Equal(2, runner.RunningCount);

        using var request = new HttpRequestMessage(HttpMethod.Post, "api/projects/limit-c/builds")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { requirements = BuildApi.Shop, simulate = true, speed = FakePacing.Speed }),
        };
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var refused = await gateway.Http.SendAsync(request);
        var text = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"third build: {(int)refused.StatusCode} {text}");
        Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
        var error = System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("TOO_MANY_BUILDS", error.GetProperty("code").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("Builder:Runner:MaxConcurrentBuilds", message, StringComparison.Ordinal);
        Assert.Contains(" 2 ", message, StringComparison.Ordinal);

        // nothing was started for the refused project, and the running builds were not disturbed
        Assert.Null(runner.RunningBuildId("limit-c"));
        Assert.Equal(2, runner.RunningCount);
        var (again, _) = await BuildApi.StartRawAsync(gateway, "limit-d", new { requirements = BuildApi.Shop, simulate = true, speed = FakePacing.Speed });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, again);

        // a build ends (cancelled): the node takes a new one
        var (cancelled, _) = await BuildApi.CancelAsync(gateway, "limit-a", first);
        Assert.Equal(HttpStatusCode.Accepted, cancelled);
        await runner.WhenFinishedAsync("limit-a").WaitAsync(TestGateway.Wait);
        await BuildApi.StartAsync(gateway, "limit-c", speed: FakePacing.Speed);
        Assert.Equal(2, runner.RunningCount);
    }
}
