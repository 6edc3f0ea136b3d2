using System.Text.Json;

namespace Builder.Cli;

/// <summary><c>replay &lt;project&gt; --from &lt;seq&gt;</c>: joins with <c>lastSeq</c>, prints what the gateway replays, exits at <c>project-joined</c>.</summary>
public static class ReplayCommand
{
    public static async Task<int> RunAsync(GatewayAddress address, string token, string projectId, long from, bool json, TimeSpan timeout, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var printer = new EventPrinter(output, json, TimeProvider.System);
        await using var connection = await GatewayConnection.ConnectAsync(address, JsonSerializer.SerializeToElement(new { token }), reconnect: false, timeout, cancellationToken);
        var join = connection.EmitAsync("join-project", [JsonSerializer.SerializeToElement(new { projectId, lastSeq = from })], cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var replayed = 0;
        try
        {
            await foreach (var e in connection.Events.ReadAllAsync(deadline.Token))
            {
                switch (e.Name)
                {
                    case "authenticated":
                        continue;
                    case "error":
                        var ack = await join;
                        var failure = EventPrinter.AckError(ack);
                        await error.WriteLineAsync($"builder: error: {failure?.Code}: {failure?.Message ?? e.Data?.GetRawText()}");
                        return CliException.ExitCodeOf(failure?.Code);
                    case GatewayConnection.DisconnectEvent:
                        await error.WriteLineAsync($"builder: error: disconnected by the gateway ({e.Data?.GetString()})");
                        return ExitCodes.Failed;
                    case "project:snapshot":
                        await error.WriteLineAsync($"builder: seq {from} is no longer in the log (or ahead of it): the gateway sent the project's snapshot instead");
                        printer.Print(e);
                        continue;
                    case "project-joined":
                        await error.WriteLineAsync($"replayed {replayed} event(s) of {projectId} after seq {from}; the log's head is seq {e.Data?.GetProperty("seq").GetInt64()}");
                        return ExitCodes.Ok;
                    default:
                        printer.Print(e);
                        replayed++;
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync($"builder: error: the replay did not end within {timeout.TotalSeconds:0} s");
            return ExitCodes.TimedOut;
        }

        return ExitCodes.Failed;
    }
}
