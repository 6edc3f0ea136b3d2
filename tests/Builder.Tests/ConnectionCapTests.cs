using System.Text.Json;
using Builder.Hub;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests;

/// <summary>
/// Builder:Limits:MaxConnectionsPerUser holds whatever the client does: many connects at once,
/// <c>authenticate</c> with another user's token, connection state recovery.
/// </summary>
public sealed class ConnectionCapTests
{
    private static bool IsConnectAnswer(string packet) =>
        packet.StartsWith("40/builder,", StringComparison.Ordinal) || packet.StartsWith("44/builder,", StringComparison.Ordinal);

    /// <summary>The code in an <c>error</c> event packet <c>42/builder,["error",{...}]</c>.</summary>
    private static string ErrorCode(string packet) =>
        JsonDocument.Parse(packet["42/builder,".Length..]).RootElement[1].GetProperty("payload").GetProperty("code").GetString()!;

    [Fact]
    public async Task Parallel_connects_of_one_user_get_exactly_the_cap_and_the_rest_CONNECTION_LIMIT()
    {
        const int Cap = 3;
        const int Parallel = 20;
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxConnectionsPerUser"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // an application middleware after the gateway's holds every connection it sees until all
        // 20 are either held there or refused: connects that overlap as much as they can
        var held = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reject = false;
        gateway.Services.GetRequiredService<BuilderHub>().Namespace.Use(async (_, _) =>
        {
            Interlocked.Increment(ref held);
            await release.Task.WaitAsync(TestGateway.Wait);
            if (Volatile.Read(ref reject))
            {
                throw new SocketIO.ConnectRejectedException("Refused by the application");
            }
        });

        var token = gateway.Token("alice", ["p1"]);
        var connect = "40/builder," + JsonSerializer.Serialize(new { token });

        async Task<string[]> ConnectAllAsync()
        {
            var sessions = new List<RawSession>();
            for (var i = 0; i < Parallel; i++)
            {
                sessions.Add(await RawSession.OpenAsync(gateway));
            }

            Volatile.Write(ref held, 0);
            await Task.WhenAll(sessions.Select(s => s.SendAsync(connect)));
            var answers = sessions.Select(s => s.NextAsync(IsConnectAnswer)).ToList();
            var deadline = DateTime.UtcNow + TestGateway.Wait;
            while (Volatile.Read(ref held) + answers.Count(a => a.IsCompletedSuccessfully) < Parallel && DateTime.UtcNow < deadline)
            {
                await Task.WhenAny(Task.WhenAny(answers), Task.Delay(20));
            }

            release.TrySetResult();
            return await Task.WhenAll(answers);
        }

        // a first burst whose connections the application refuses after the gateway's check: no slot is kept
        reject = true;
        var first = await ConnectAllAsync();
        Assert.All(first, a => Assert.StartsWith("44/builder,", a, StringComparison.Ordinal));

        release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reject = false;
        var answers = await ConnectAllAsync();
        Assert.Equal(Cap, answers.Count(a => a.StartsWith("40/builder,", StringComparison.Ordinal)));
        foreach (var refused in answers.Where(a => a.StartsWith("44/builder,", StringComparison.Ordinal)))
        {
            var data = JsonDocument.Parse(refused["44/builder,".Length..]).RootElement;
            Assert.Equal("CONNECTION_LIMIT", data.GetProperty("data").GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task Authenticate_as_another_user_moves_the_count_and_is_refused_when_that_user_is_at_the_cap()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxConnectionsPerUser"] = "1");
        var alice = gateway.Token("alice", ["p1"]);
        var bob = gateway.Token("bob", ["p1"]);
        var carol = gateway.Token("carol", ["p1"]);
        await using var x = gateway.Client(alice);
        await x.ConnectAsync();
        await using var y = gateway.Client(bob);
        await y.ConnectAsync();

        // bob is at the cap: x may not become a second bob connection
        var refused = await x.EmitWithAckAsync("authenticate", new { token = bob });
        Assert.False(refused.GetProperty("ok").GetBoolean(), refused.GetRawText());
        Assert.Equal("CONNECTION_LIMIT", refused.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("CONNECTION_LIMIT", (await x.NextAsync("error")).GetProperty("payload").GetProperty("code").GetString());
        Assert.True(x.Connected);

        // x is still alice's one connection
        Assert.Equal("CONNECTION_LIMIT", (await RawPolling.ConnectErrorAsync(gateway, new { token = alice })).GetProperty("data").GetProperty("code").GetString());

        // x becomes carol: alice's slot is free, carol's is taken
        var moved = await x.EmitWithAckAsync("authenticate", new { token = carol });
        Assert.True(moved.GetProperty("ok").GetBoolean(), moved.GetRawText());
        Assert.StartsWith("40/builder,", await RawPolling.ConnectAsync(gateway, new { token = alice }), StringComparison.Ordinal);
        Assert.Equal("CONNECTION_LIMIT", (await RawPolling.ConnectErrorAsync(gateway, new { token = carol })).GetProperty("data").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_recovered_connection_is_counted_and_refused_over_the_cap()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxConnectionsPerUser"] = "1");
        var token = gateway.Token("alice", ["p1"]);

        // a connection that gets a recovery id and an offset (its "authenticated" event), then drops
        var first = await RawSession.OpenAsync(gateway);
        await first.SendAsync("40/builder," + JsonSerializer.Serialize(new { token }));
        var connected = JsonDocument.Parse((await first.NextAsync("40/builder,"))["40/builder,".Length..]).RootElement;
        var sid = connected.GetProperty("sid").GetString();
        var pid = connected.GetProperty("pid").GetString();
        var authenticated = JsonDocument.Parse((await first.NextAsync("42/builder,[\"authenticated\""))["42/builder,".Length..]).RootElement;
        var offset = authenticated[authenticated.GetArrayLength() - 1].GetString();
        await first.SendAsync("1");

        // once the server has seen it go, alice connects anew: she is at the cap
        var deadline = DateTime.UtcNow + TestGateway.Wait;
        string answer;
        do
        {
            var second = await RawSession.OpenAsync(gateway);
            await second.SendAsync("40/builder," + JsonSerializer.Serialize(new { token }));
            answer = await second.NextAsync(IsConnectAnswer);
        }
        while (!answer.StartsWith("40/builder,", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        Assert.StartsWith("40/builder,", answer, StringComparison.Ordinal);

        // the dropped connection recovers (no middleware runs): it must not make a second one
        var recovering = await RawSession.OpenAsync(gateway);
        await recovering.SendAsync("40/builder," + JsonSerializer.Serialize(new { token, pid, offset }));
        var recovered = JsonDocument.Parse((await recovering.NextAsync("40/builder,"))["40/builder,".Length..]).RootElement;
        Assert.Equal(sid, recovered.GetProperty("sid").GetString());
        var error = await recovering.NextAsync("42/builder,[\"error\"", TimeSpan.FromSeconds(5));
        Assert.Equal("CONNECTION_LIMIT", ErrorCode(error));
        await recovering.NextAsync("41/builder");
    }
}
