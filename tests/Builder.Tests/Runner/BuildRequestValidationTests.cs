using System.Net;
using Builder.Runner;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Runner;

/// <summary>POST /api/projects/{id}/builds refuses what it cannot run, naming the field, and asks for a producer's credential.</summary>
public sealed class BuildRequestValidationTests
{
    public static TheoryData<string, object, string> Invalid => new()
    {
        { "requirements missing", new { simulate = true }, "requirements" },
        { "requirements blank", new { requirements = "   ", simulate = true }, "requirements" },
        { "simulate false", new { requirements = BuildApi.Shop, simulate = false }, "simulate" },
        { "simulate missing", new { requirements = BuildApi.Shop }, "simulate" },
        { "fault kind", new { requirements = BuildApi.Shop, simulate = true, faults = new[] { new { kind = "flaky", phase = "generate" } } }, "faults[0].kind" },
        { "fault phase", new { requirements = BuildApi.Shop, simulate = true, faults = new[] { new { kind = "fatal", phase = "compile" } } }, "faults[0].phase" },
        { "second fault phase", new { requirements = BuildApi.Shop, simulate = true, faults = new object[] { new { kind = "transient", phase = "generate", count = 2 }, new { kind = "transient", phase = "deploying" } } }, "faults[1].phase" },
        { "fault agent type", new { requirements = BuildApi.Shop, simulate = true, faults = new[] { new { kind = "fatal", phase = "generate", agentType = "robot" } } }, "faults[0].agentType" },
        { "speed", new { requirements = BuildApi.Shop, simulate = true, speed = 0 }, "speed" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task Invalid_request_is_400_naming_the_field_and_starts_nothing(string because, object body, string field)
    {
        await using var gateway = await TestGateway.StartAsync();
        var (status, response) = await BuildApi.StartRawAsync(gateway, "shop-invalid", body);
        Assert.True(status == HttpStatusCode.BadRequest, $"{because}: {(int)status} {response.GetRawText()}");
        Assert.Equal("VALIDATION_FAILED", response.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal([field], BuildApi.Fields(response));
        Assert.Contains(field, response.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Null(gateway.Services.GetRequiredService<BuildRunner>().RunningBuildId("shop-invalid"));
    }

    [Fact]
    public async Task Several_mistakes_are_named_together()
    {
        await using var gateway = await TestGateway.StartAsync();
        var (status, response) = await BuildApi.StartRawAsync(gateway, "shop-invalid", new { simulate = false, faults = new[] { new { kind = "boom", phase = "nowhere" } } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(["faults[0].kind", "faults[0].phase", "requirements", "simulate"], BuildApi.Fields(response).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Build_endpoints_need_a_producer_credential()
    {
        await using var gateway = await TestGateway.StartAsync();
        var body = new { requirements = BuildApi.Shop, simulate = true, speed = BuildApi.Fast };

        var (none, noneBody) = await BuildApi.StartRawAsync(gateway, "shop-auth", body, _ => { });
        Assert.Equal(HttpStatusCode.Unauthorized, none);
        Assert.False(string.IsNullOrEmpty(noneBody.GetProperty("error").GetProperty("code").GetString()));

        var (badKey, _) = await BuildApi.StartRawAsync(gateway, "shop-auth", body, r => r.Headers.Add("X-Api-Key", "not-the-key"));
        Assert.Equal(HttpStatusCode.Unauthorized, badKey);

        // a user's token is not a producer's; a service token must cover the project
        var (user, _) = await BuildApi.StartRawAsync(gateway, "shop-auth", body, r => r.Headers.Authorization = new("Bearer", gateway.Token("alice", ["shop-auth"])));
        Assert.Equal(HttpStatusCode.Forbidden, user);
        var (otherProject, _) = await BuildApi.StartRawAsync(gateway, "shop-auth", body, r => r.Headers.Authorization = new("Bearer", gateway.Token("svc", ["elsewhere"], role: "service")));
        Assert.Equal(HttpStatusCode.Forbidden, otherProject);
        Assert.Null(gateway.Services.GetRequiredService<BuildRunner>().RunningBuildId("shop-auth"));

        var (cancel, _) = await CancelWithoutCredentialAsync(gateway);
        Assert.Equal(HttpStatusCode.Unauthorized, cancel);

        // with one, it starts
        var (service, started) = await BuildApi.StartRawAsync(gateway, "shop-auth", body, r => r.Headers.Authorization = new("Bearer", gateway.Token("svc", ["shop-auth"], role: "service")));
        Assert.True(service == HttpStatusCode.Accepted, $"{(int)service} {started.GetRawText()}");
    }

    private static async Task<(HttpStatusCode, string)> CancelWithoutCredentialAsync(TestGateway gateway)
    {
        using var response = await gateway.Http.PostAsync("api/projects/shop-auth/builds/build-x/cancel", null);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
