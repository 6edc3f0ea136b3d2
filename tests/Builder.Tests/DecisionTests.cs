using System.Text.Json;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests;

/// <summary>User decisions: first answer wins, each mistake its own code, timeouts, long-poll, restarts.</summary>
public sealed class DecisionTests
{
    private static async Task<BuilderClient> JoinedAsync(TestGateway gateway, string userId, params string[] projects)
    {
        var client = gateway.Client(gateway.Token(userId, projects));
        await client.ConnectAsync();
        foreach (var project in projects)
        {
            await client.JoinAsync(project);
        }

        return client;
    }

    private static void AssertResolved(JsonElement resolved, string decisionId, string optionId, string resolvedBy)
    {
        Assert.Equal("user:decision:resolved", resolved.GetProperty("type").GetString());
        var payload = resolved.GetProperty("payload");
        Assert.Equal(decisionId, payload.GetProperty("decisionId").GetString());
        Assert.Equal(optionId, payload.GetProperty("selectedOptionId").GetString());
        Assert.Equal(resolvedBy, payload.GetProperty("resolvedBy").GetString());
    }

    [Fact]
    public async Task Decision_required_has_the_documented_shape_and_an_answer_resolves_it()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "p1");

        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 120));
        var required = await alice.NextAsync("user:decision:required");
        Assert.Equal("user:decision:required", required.GetProperty("type").GetString());
        Assert.Equal("p1", required.GetProperty("projectId").GetString());
        var payload = required.GetProperty("payload");
        Assert.Equal("p1", payload.GetProperty("projectId").GetString());
        Assert.Equal("agent-1", payload.GetProperty("agentId").GetString());
        Assert.Equal(decisionId, payload.GetProperty("decisionId").GetString());
        Assert.Equal("Which layout style do you prefer?", payload.GetProperty("question").GetString());
        Assert.Equal(120, payload.GetProperty("timeout").GetInt32());
        var options = payload.GetProperty("options").EnumerateArray().ToList();
        Assert.Equal(["option-1", "option-2"], options.Select(o => o.GetProperty("id").GetString()));
        Assert.Equal("Modern Dashboard", options[0].GetProperty("label").GetString());
        Assert.Equal("Card-based layout with charts", options[0].GetProperty("description").GetString());
        Assert.Equal("url-to-preview-image", options[0].GetProperty("preview").GetString());

        var ack = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2", feedback = "Looks great!" });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        var resolved = await alice.NextAsync("user:decision:resolved");
        AssertResolved(resolved, decisionId, "option-2", "user");
        Assert.Equal("alice", resolved.GetProperty("payload").GetProperty("userId").GetString());
        Assert.Equal("Looks great!", resolved.GetProperty("payload").GetProperty("feedback").GetString());

        var (status, body) = await gateway.GetDecisionAsync(decisionId);
        Assert.Equal(200, status);
        Assert.Equal("resolved", body.GetProperty("status").GetString());
        Assert.Equal("option-2", body.GetProperty("resolution").GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", body.GetProperty("resolution").GetProperty("resolvedBy").GetString());
        Assert.Equal("alice", body.GetProperty("resolution").GetProperty("userId").GetString());
    }

    [Fact]
    public async Task Two_users_answering_at_once_resolve_it_exactly_once()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "p1");
        await using var bob = await JoinedAsync(gateway, "bob", "p1");

        for (var round = 0; round < 10; round++)
        {
            var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());
            await alice.NextAsync("user:decision:required");
            await bob.NextAsync("user:decision:required");

            var answers = await Task.WhenAll(
                alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" }),
                bob.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2" }));

            var winners = answers.Count(a => a.GetProperty("ok").GetBoolean());
            Assert.Equal(1, winners);
            var winnerIndex = answers[0].GetProperty("ok").GetBoolean() ? 0 : 1;
            var (winner, loser) = winnerIndex == 0 ? (alice, bob) : (bob, alice);
            var loserAck = answers[1 - winnerIndex];
            Assert.Equal("DECISION_ALREADY_RESOLVED", loserAck.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("DECISION_ALREADY_RESOLVED", (await loser.NextAsync("error")).GetProperty("payload").GetProperty("code").GetString());

            var chosen = winnerIndex == 0 ? "option-1" : "option-2";
            var winnerId = winnerIndex == 0 ? "alice" : "bob";
            foreach (var client in new[] { alice, bob })
            {
                var resolved = await client.NextAsync("user:decision:resolved");
                AssertResolved(resolved, decisionId, chosen, "user");
                Assert.Equal(winnerId, resolved.GetProperty("payload").GetProperty("userId").GetString());
                await client.BarrierAsync();
                Assert.Equal(0, client.Pending("user:decision:resolved"));
            }

            Assert.Equal(0, winner.Pending("error"));
            Assert.Equal(0, loser.Pending("error"));
        }
    }

    [Fact]
    public async Task Each_refused_answer_gets_its_own_code()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "p1");
        await using var stranger = await JoinedAsync(gateway, "mallory", "p-other");
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());
        await alice.NextAsync("user:decision:required");

        async Task ExpectAsync(BuilderClient client, object answer, string code)
        {
            var ack = await client.EmitWithAckAsync("user:decision:response", answer);
            Assert.False(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
            Assert.Equal(code, ack.GetProperty("error").GetProperty("code").GetString());
            var error = await client.NextAsync("error");
            Assert.Equal(code, error.GetProperty("payload").GetProperty("code").GetString());
            Assert.True(client.Connected);
        }

        await ExpectAsync(alice, new { decisionId = "decision-does-not-exist", selectedOptionId = "option-1" }, "DECISION_NOT_FOUND");
        await ExpectAsync(alice, new { decisionId, selectedOptionId = "option-9" }, "DECISION_INVALID_OPTION");
        await ExpectAsync(stranger, new { decisionId, selectedOptionId = "option-1" }, "DECISION_NOT_FOUND");

        // none of them resolved it
        var (_, pending) = await gateway.GetDecisionAsync(decisionId);
        Assert.Equal("pending", pending.GetProperty("status").GetString());
        await alice.BarrierAsync();
        Assert.Equal(0, alice.Pending("user:decision:resolved"));

        var ok = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" });
        Assert.True(ok.GetProperty("ok").GetBoolean(), ok.GetRawText());
        await ExpectAsync(alice, new { decisionId, selectedOptionId = "option-2" }, "DECISION_ALREADY_RESOLVED");
        await stranger.BarrierAsync();
        Assert.Equal(0, stranger.Pending("user:decision:resolved"));
        Assert.Equal(0, stranger.Pending("user:decision:required"));
    }

    [Fact]
    public async Task Unanswered_decision_resolves_to_its_default_at_the_timeout()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        await using var alice = await JoinedAsync(gateway, "alice", "p1");
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 60, defaultOptionId: "option-2"));
        var implicitDefault = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 90));
        await alice.NextAsync("user:decision:required");
        await alice.NextAsync("user:decision:required");

        gateway.Time.Advance(TimeSpan.FromSeconds(59));
        await alice.BarrierAsync();
        Assert.Equal(0, alice.Pending("user:decision:resolved"));
        Assert.Equal("pending", (await gateway.GetDecisionAsync(decisionId)).Body.GetProperty("status").GetString());

        gateway.Time.Advance(TimeSpan.FromSeconds(1));
        var resolved = await alice.NextAsync("user:decision:resolved");
        AssertResolved(resolved, decisionId, "option-2", "timeout");
        Assert.False(resolved.GetProperty("payload").TryGetProperty("userId", out _));

        var (_, body) = await gateway.GetDecisionAsync(decisionId);
        Assert.Equal("resolved", body.GetProperty("status").GetString());
        Assert.Equal("timeout", body.GetProperty("resolution").GetProperty("resolvedBy").GetString());
        Assert.Equal("option-2", body.GetProperty("resolution").GetProperty("selectedOptionId").GetString());

        // without defaultOptionId the first option is the default
        gateway.Time.Advance(TimeSpan.FromSeconds(30));
        AssertResolved(await alice.NextAsync("user:decision:resolved"), implicitDefault, "option-1", "timeout");

        // an answer after the timeout is refused
        var late = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" });
        Assert.Equal("DECISION_ALREADY_RESOLVED", late.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Long_poll_returns_the_resolution_when_it_comes()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "p1");
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());

        var (status, now) = await gateway.GetDecisionAsync(decisionId, wait: 0);
        Assert.Equal(200, status);
        Assert.Equal("pending", now.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, now.GetProperty("resolution").ValueKind);

        gateway.ResetLongPollWaiting();
        var poll = gateway.GetDecisionAsync(decisionId, wait: 5);
        await gateway.LongPollWaiting.WaitAsync(TestGateway.Wait);
        Assert.False(poll.IsCompleted);

        var ack = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2", feedback = "ok" });
        Assert.True(ack.GetProperty("ok").GetBoolean());
        var (pollStatus, body) = await poll.WaitAsync(TestGateway.Wait);
        Assert.Equal(200, pollStatus);
        Assert.Equal("resolved", body.GetProperty("status").GetString());
        Assert.Equal("option-2", body.GetProperty("resolution").GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", body.GetProperty("resolution").GetProperty("resolvedBy").GetString());
        Assert.Equal("alice", body.GetProperty("resolution").GetProperty("userId").GetString());
        Assert.Equal("ok", body.GetProperty("resolution").GetProperty("feedback").GetString());

        var (missing, _) = await gateway.GetDecisionAsync("decision-unknown", wait: 1);
        Assert.Equal(404, missing);
        var (badWait, _) = await gateway.GetDecisionAsync(decisionId, wait: 301);
        Assert.Equal(400, badWait);
    }

    [Fact]
    public async Task Long_poll_answers_pending_when_its_wait_elapses()
    {
        await using var gateway = await TestGateway.StartAsync();
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 600));

        gateway.ResetLongPollWaiting();
        var poll = gateway.GetDecisionAsync(decisionId, wait: 5);
        await gateway.LongPollWaiting.WaitAsync(TestGateway.Wait);
        gateway.Time.Advance(TimeSpan.FromSeconds(5));
        var (status, body) = await poll.WaitAsync(TestGateway.Wait);
        Assert.Equal(200, status);
        Assert.Equal("pending", body.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Decision_api_checks_the_producer_credential_against_the_decision_project()
    {
        await using var gateway = await TestGateway.StartAsync();
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());

        async Task<int> GetAsync(string? bearer)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"api/decisions/{decisionId}");
            if (bearer is not null)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
            }

            using var response = await gateway.Http.SendAsync(request);
            return (int)response.StatusCode;
        }

        async Task<int> CreateAsync(string bearer, string projectId)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/decisions")
            {
                Content = System.Net.Http.Json.JsonContent.Create(TestGateway.TwoOptionDecision()),
            };
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
            using var response = await gateway.Http.SendAsync(request);
            return (int)response.StatusCode;
        }

        Assert.Equal(401, await GetAsync(null));
        Assert.Equal(403, await GetAsync(gateway.Token("alice", ["p1"])));
        Assert.Equal(200, await GetAsync(gateway.Token("agent-1", ["p1"], role: "agent")));
        Assert.Equal(201, await CreateAsync(gateway.Token("agent-1", ["p1"], role: "agent"), "p1"));
        Assert.Equal(403, await CreateAsync(gateway.Token("agent-2", ["p2"], role: "agent"), "p1"));
        Assert.Equal(403, await CreateAsync(gateway.Token("alice", ["p1"]), "p1"));

        // an agent of p2 may not read p1's decisions (question, options, who answered what)
        var status = await GetAsync(gateway.Token("agent-2", ["p2"], role: "agent"));
        Assert.True(status is 403 or 404, $"an agent scoped to p2 read a decision of p1: {status}");
    }

    [Fact]
    public async Task Invalid_decision_requests_get_400_naming_each_field()
    {
        await using var gateway = await TestGateway.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/projects/p1/decisions")
        {
            Content = new StringContent("""{"question":"","options":[{"id":"a","label":""},{"id":"a","label":"x"}],"timeout":0,"defaultOptionId":"zzz"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var response = await gateway.Http.SendAsync(request);
        Assert.Equal(400, (int)response.StatusCode);
        var fields = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("fields")
            .EnumerateArray().Select(f => f.GetProperty("field").GetString()!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { "defaultOptionId", "options", "options[0].label", "question", "timeout" }, fields);
    }

    /// <summary>Stops and disposes a sqlite gateway, ignoring the store's double dispose (<see cref="Sqlite_store_gateway_shuts_down_cleanly"/> reports it).</summary>
    private static async Task DisposeDespiteDoubleDisposeAsync(TestGateway gateway)
    {
        await gateway.StopAsync();
        try
        {
            await gateway.DisposeAsync();
        }
        catch (ObjectDisposedException)
        {
            // see Sqlite_store_gateway_shuts_down_cleanly
        }
    }

    [Fact]
    public async Task Sqlite_store_gateway_shuts_down_cleanly()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-tests-" + Guid.NewGuid().ToString("N") + ".db");
        try
        {
            var gateway = await TestGateway.StartAsync(s =>
            {
                s["Builder:Store:Provider"] = "sqlite";
                s["Builder:Store:Path"] = path;
            });
            await gateway.PublishAsync("p1", "build:progress", new { currentPhase = "design", phaseProgress = 1, overallProgress = 1 });
            await gateway.StopAsync();
            var dispose = await Record.ExceptionAsync(async () => await gateway.DisposeAsync());
            Assert.Null(dispose);
        }
        finally
        {
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }

    [Fact]
    public async Task Pending_decision_survives_a_restart_and_resolves_at_its_deadline()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-tests-" + Guid.NewGuid().ToString("N") + ".db");
        void Sqlite(Dictionary<string, string?> s)
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = path;
            s["Builder:Heartbeat:IntervalSeconds"] = "100000";
        }

        try
        {
            string decisionId;
            long deadline;
            DateTimeOffset stoppedAt;
            var first = await TestGateway.StartAsync(Sqlite);
            await first.PublishAsync("p1", "build:started", new { estimatedDuration = 120, phases = new[] { "analyze", "design" } });
            decisionId = await first.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 300, defaultOptionId: "option-2"));
            var (_, body) = await first.GetDecisionAsync(decisionId);
            Assert.Equal("pending", body.GetProperty("status").GetString());
            deadline = body.GetProperty("deadline").GetInt64();
            first.Time.Advance(TimeSpan.FromSeconds(100));
            stoppedAt = first.Time.GetUtcNow();
            await DisposeDespiteDoubleDisposeAsync(first);

            // a new process on the same file, its clock where the old one stopped
            var second = await TestGateway.StartAsync(Sqlite, new FakeTimeProvider(stoppedAt));
            try
            {
                var (status, after) = await second.GetDecisionAsync(decisionId);
                Assert.Equal(200, status);
                Assert.Equal("pending", after.GetProperty("status").GetString());
                Assert.Equal(deadline, after.GetProperty("deadline").GetInt64());

                await using var alice = second.Client(second.Token("alice", ["p1"]));
                await alice.ConnectAsync();
                var joined = await alice.JoinAsync("p1");
                Assert.Equal(2, joined.GetProperty("seq").GetInt64());
                var snapshot = await alice.NextAsync("project:snapshot");
                var pending = Assert.Single(snapshot.GetProperty("pendingDecisions").EnumerateArray());
                Assert.Equal(decisionId, pending.GetProperty("decisionId").GetString());
                Assert.Equal(200, pending.GetProperty("timeLeft").GetInt32());

                second.Time.Advance(TimeSpan.FromSeconds(199));
                await alice.BarrierAsync();
                Assert.Equal(0, alice.Pending("user:decision:resolved"));
                Assert.Equal("pending", (await second.GetDecisionAsync(decisionId)).Body.GetProperty("status").GetString());

                second.Time.Advance(TimeSpan.FromSeconds(1));
                var resolved = await alice.NextAsync("user:decision:resolved");
                AssertResolved(resolved, decisionId, "option-2", "timeout");
                Assert.Equal(3, resolved.GetProperty("seq").GetInt64());
                var (_, final) = await second.GetDecisionAsync(decisionId);
                Assert.Equal("resolved", final.GetProperty("status").GetString());
                Assert.Equal("timeout", final.GetProperty("resolution").GetProperty("resolvedBy").GetString());
            }
            finally
            {
                await DisposeDespiteDoubleDisposeAsync(second);
            }
        }
        finally
        {
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }
}
