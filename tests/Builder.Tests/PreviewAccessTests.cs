using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Builder.Auth;
using Builder.Tests.Infrastructure;
using Builder.Tests.Runner;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests;

/// <summary>
/// Issue 16, defect 2: <c>/preview/{projectId}</c> needs the access of <c>join-project</c> (a user
/// token in <c>?token=</c> or <c>Authorization: Bearer</c>) or a signed, expiring preview link, and
/// reads a bounded tail of the log.
/// </summary>
public sealed class PreviewAccessTests
{
    private const string Summary = "Created the preview-test tables";

    private static async Task PublishOutputAsync(TestGateway gateway, string projectId) =>
        await gateway.PublishAsync(projectId, "agent:output", new { agentId = "db-1", agentType = "database", output = new { migrations = new[] { "CREATE TABLE preview_things" } }, summary = Summary });

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(TestGateway gateway, string url, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway.Url, url));
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await gateway.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Code(string body) => JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString()!;

    [Fact]
    public async Task Request_without_credential_is_refused_with_401_naming_the_problem()
    {
        await using var gateway = await TestGateway.StartAsync();
        await PublishOutputAsync(gateway, "p1");

        var (status, body) = await GetAsync(gateway, "preview/p1");
        Assert.True(status == HttpStatusCode.Unauthorized, $"{(int)status} {body}");
        Assert.Equal("TOKEN_MISSING", Code(body));
        Assert.DoesNotContain(Summary, body, StringComparison.Ordinal);

        var (invalid, invalidBody) = await GetAsync(gateway, "preview/p1?token=" + Tokens.WrongSignature(gateway));
        Assert.Equal(HttpStatusCode.Unauthorized, invalid);
        Assert.Equal("TOKEN_INVALID", Code(invalidBody));
    }

    [Fact]
    public async Task Token_without_access_is_refused_alike_for_existing_and_unknown_projects()
    {
        await using var gateway = await TestGateway.StartAsync();
        await PublishOutputAsync(gateway, "p1");
        var bob = gateway.Token("bob", ["p-other"]);

        var existing = await GetAsync(gateway, "preview/p1?token=" + bob);
        Assert.True(existing.Status == HttpStatusCode.Forbidden, $"{(int)existing.Status} {existing.Body}");
        Assert.Equal("FORBIDDEN", Code(existing.Body));
        Assert.DoesNotContain(Summary, existing.Body, StringComparison.Ordinal);

        // a project that does not exist gets the same answer: existence is not revealed
        var unknown = await GetAsync(gateway, "preview/p-unknown", bearer: bob);
        Assert.Equal(existing.Status, unknown.Status);
        Assert.Equal(existing.Body.Replace("p1", "X", StringComparison.Ordinal), unknown.Body.Replace("p-unknown", "X", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Valid_token_in_the_query_or_the_header_shows_the_outputs()
    {
        await using var gateway = await TestGateway.StartAsync();
        await PublishOutputAsync(gateway, "p1");
        var alice = gateway.Token("alice", ["p1"]);

        var query = await GetAsync(gateway, "preview/p1?token=" + alice);
        Assert.True(query.Status == HttpStatusCode.OK, $"{(int)query.Status} {query.Body}");
        Assert.Contains(Summary, query.Body, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE preview_things", query.Body, StringComparison.Ordinal);

        var header = await GetAsync(gateway, "preview/p1", bearer: alice);
        Assert.Equal(HttpStatusCode.OK, header.Status);
        Assert.Contains(Summary, header.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signed_link_works_until_its_expiry_and_a_tampered_link_is_refused()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Preview:LinkSeconds"] = "600");
        await PublishOutputAsync(gateway, "p1");
        await PublishOutputAsync(gateway, "p2");
        var link = new Uri(gateway.Services.GetRequiredService<PreviewLinks>().Sign(new Uri(gateway.Url, "preview").ToString(), "p1"));
        Assert.Equal("/preview/p1", link.AbsolutePath);

        var ok = await GetAsync(gateway, link.PathAndQuery);
        Assert.True(ok.Status == HttpStatusCode.OK, $"{(int)ok.Status} {ok.Body}");
        Assert.Contains(Summary, ok.Body, StringComparison.Ordinal);

        // the signature covers the project and the expiry
        var otherProject = await GetAsync(gateway, "preview/p2" + link.Query);
        Assert.True(otherProject.Status == HttpStatusCode.Unauthorized, $"{(int)otherProject.Status} {otherProject.Body}");
        Assert.Equal("PREVIEW_LINK_INVALID", Code(otherProject.Body));
        var expires = long.Parse(System.Web.HttpUtility.ParseQueryString(link.Query)["expires"]!, System.Globalization.CultureInfo.InvariantCulture);
        var later = await GetAsync(gateway, link.PathAndQuery.Replace($"expires={expires}", $"expires={expires + 3600}", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Unauthorized, later.Status);
        Assert.Equal("PREVIEW_LINK_INVALID", Code(later.Body));
        var badSignature = await GetAsync(gateway, link.PathAndQuery[..^2] + (link.PathAndQuery.EndsWith("AA", StringComparison.Ordinal) ? "BB" : "AA"));
        Assert.Equal(HttpStatusCode.Unauthorized, badSignature.Status);
        Assert.Equal("PREVIEW_LINK_INVALID", Code(badSignature.Body));

        gateway.Time.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(gateway, link.PathAndQuery)).Status);
        gateway.Time.Advance(TimeSpan.FromSeconds(2));
        var expired = await GetAsync(gateway, link.PathAndQuery);
        Assert.True(expired.Status == HttpStatusCode.Unauthorized, $"{(int)expired.Status} {expired.Body}");
        Assert.Equal("PREVIEW_LINK_EXPIRED", Code(expired.Body));
    }

    [Fact]
    public async Task Build_completed_previewUrl_is_a_working_signed_link()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        const string project = "shop-preview";
        await using var client = gateway.Client(gateway.Token("user-1", [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);
        await BuildApi.StartAsync(gateway, project);
        var events = await EventStream.RunToEndAsync(client, answer: "option-1", wait: EventStream.BuildWait);
        Assert.True(events[^1].Name == "build:completed", EventStream.Describe(events));

        var previewUrl = new Uri(events[^1].Payload().GetProperty("previewUrl").GetString()!);
        Assert.Equal(new Uri(gateway.Url, $"preview/{project}"), new Uri(previewUrl.GetLeftPart(UriPartial.Path)));
        var opened = await GetAsync(gateway, previewUrl.PathAndQuery);
        Assert.True(opened.Status == HttpStatusCode.OK, $"{(int)opened.Status} {opened.Body}");
        Assert.Contains("database agent", opened.Body, StringComparison.Ordinal);

        // without its signature it is refused
        var bare = await GetAsync(gateway, previewUrl.AbsolutePath);
        Assert.Equal(HttpStatusCode.Unauthorized, bare.Status);

        // it lasts Builder:Preview:LinkSeconds (default one hour) on the gateway's clock
        gateway.Time.Advance(TimeSpan.FromSeconds(3601));
        var expired = await GetAsync(gateway, previewUrl.PathAndQuery);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.Status);
        Assert.Equal("PREVIEW_LINK_EXPIRED", Code(expired.Body));
    }

    [Fact]
    public async Task Preview_reads_only_the_last_MaxEvents_events_of_the_log()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Preview:MaxEvents"] = "10");
        var alice = gateway.Token("alice", ["p1"]);
        await PublishOutputAsync(gateway, "p1");
        for (var i = 0; i < 9; i++)
        {
            await gateway.PublishAsync("p1", "build:progress", new { currentPhase = "generate", phaseProgress = i, overallProgress = i, message = $"event {i}" });
        }

        // the output is the 10th event from the end: still read
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(gateway, "preview/p1", bearer: alice)).Status);

        await gateway.PublishAsync("p1", "build:progress", new { currentPhase = "generate", phaseProgress = 9, overallProgress = 9, message = "event 9" });
        var (status, body) = await GetAsync(gateway, "preview/p1", bearer: alice);
        Assert.True(status == HttpStatusCode.NotFound, $"{(int)status} {body}");
        Assert.Equal("NO_PREVIEW", Code(body));
    }
}
