using System.Net.Http.Headers;
using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>
/// Issue 16, defect 7: a decision of a project the caller may not see is answered exactly like an
/// unknown decision id, over Socket.IO and over HTTP, so that an outsider cannot learn which ids exist.
/// </summary>
public sealed class DecisionIdPrivacyTests
{
    private const string Unknown = "decision-that-does-not-exist";

    /// <summary>The answer with the decision id replaced, so that two answers can be compared.</summary>
    private static string Normalized(JsonElement answer, string decisionId) => answer.GetRawText().Replace(decisionId, "<id>", StringComparison.Ordinal);

    [Fact]
    public async Task Socket_answer_for_another_projects_decision_is_the_unknown_id_answer()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice = gateway.Client(gateway.Token("alice", ["p1"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("p1");
        await using var stranger = gateway.Client(gateway.Token("mallory", ["p-other"]));
        await stranger.ConnectAsync();
        await stranger.JoinAsync("p-other");
        var pendingId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());
        await alice.NextAsync("user:decision:required");

        async Task<(string Ack, string Error)> AnswerAsync(string decisionId)
        {
            var ack = await stranger.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" });
            var error = await stranger.NextAsync("error");
            return (Normalized(ack, decisionId), Normalized(error.GetProperty("payload"), decisionId));
        }

        var unknown = await AnswerAsync(Unknown);
        var foreign = await AnswerAsync(pendingId);
        Assert.Contains("DECISION_NOT_FOUND", unknown.Ack, StringComparison.Ordinal);
        Assert.Equal(unknown.Ack, foreign.Ack);
        Assert.Equal(unknown.Error, foreign.Error);

        // a resolved decision of another project answers the same way too
        var ok = await alice.EmitWithAckAsync("user:decision:response", new { decisionId = pendingId, selectedOptionId = "option-1" });
        Assert.True(ok.GetProperty("ok").GetBoolean(), ok.GetRawText());
        var resolved = await AnswerAsync(pendingId);
        Assert.Equal(unknown.Ack, resolved.Ack);
        Assert.Equal(unknown.Error, resolved.Error);
    }

    [Fact]
    public async Task Http_answer_for_another_projects_decision_is_the_unknown_id_answer()
    {
        await using var gateway = await TestGateway.StartAsync();
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());
        var otherService = gateway.Token("svc-other", ["p-other"], role: "service");

        async Task<(int Status, string Body)> GetAsync(string id)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"api/decisions/{id}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", otherService);
            using var response = await gateway.Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, Normalized(JsonDocument.Parse(text).RootElement, id));
        }

        var unknown = await GetAsync(Unknown);
        var foreign = await GetAsync(decisionId);
        Assert.Equal(404, unknown.Status);
        Assert.Contains("DECISION_NOT_FOUND", unknown.Body, StringComparison.Ordinal);
        Assert.Equal(unknown, foreign);

        // the producer of p1 still reads it
        var (status, body) = await gateway.GetDecisionAsync(decisionId);
        Assert.Equal(200, status);
        Assert.Equal("pending", body.GetProperty("status").GetString());
    }
}
