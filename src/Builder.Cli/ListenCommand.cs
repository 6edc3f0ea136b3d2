using System.Diagnostics;
using System.Text.Json;

namespace Builder.Cli;

/// <summary>What the document's invocation asks: where, with which auth, what to emit, what to print and when to stop.</summary>
public sealed record ListenSettings(
    GatewayAddress Address,
    JsonElement? Auth,
    IReadOnlyList<(string Name, List<JsonElement> Args)> Emits,
    IReadOnlyList<string> On,
    string? Until,
    int? Count,
    TimeSpan? Timeout,
    bool Json);

/// <summary>
/// The protocol document's tool: connects to a namespace with an auth object, emits the given
/// events (again after a reconnection, as the document's client re-joins), prints the events
/// asked for, answers the heartbeat, and runs until Ctrl-C, <c>--until</c>, <c>--count</c> or <c>--timeout</c>.
/// </summary>
public static class ListenCommand
{
    public static async Task<int> RunAsync(ListenSettings settings, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var printer = new EventPrinter(output, settings.Json, TimeProvider.System);
        var all = settings.On.Count == 0 || settings.On.Contains("*");
        var connectTimeout = settings.Timeout is { } t && t < GatewayConnection.DefaultTimeout ? t : GatewayConnection.DefaultTimeout;
        var clock = Stopwatch.StartNew();
        await using var connection = await GatewayConnection.ConnectAsync(settings.Address, settings.Auth, reconnect: true, connectTimeout, cancellationToken);

        var firstConnect = true;
        connection.Connected += () =>
        {
            if (!firstConnect)
            {
                _ = Task.Run(() => EmitAllAsync(connection, settings, printer, error, CancellationToken.None), CancellationToken.None);
            }
        };
        firstConnect = false;
        var failure = await EmitAllAsync(connection, settings, printer, error, cancellationToken);
        if (failure is { } exit)
        {
            return exit;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (settings.Timeout is { } timeout)
        {
            deadline.CancelAfter(timeout - clock.Elapsed is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }

        var printed = 0;
        try
        {
            await foreach (var e in connection.Events.ReadAllAsync(deadline.Token))
            {
                if (e.Name == GatewayConnection.DisconnectEvent)
                {
                    await error.WriteLineAsync($"builder: error: disconnected by the gateway ({e.Data?.GetString()})");
                    return ExitCodes.Failed;
                }

                var wanted = (all && e.Name != "ping") || settings.On.Contains(e.Name);
                if (wanted)
                {
                    printer.Print(e);
                    printed++;
                }
                else if (e.Name == "error")
                {
                    // never a silent drop: the gateway's errors go to stderr when not asked for
                    await error.WriteLineAsync("builder: gateway error: " + e.Data?.GetRawText());
                }

                if (e.Name == settings.Until || (settings.Count is { } count && printed >= count))
                {
                    return ExitCodes.Ok;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (settings.Until is not null)
            {
                await error.WriteLineAsync($"builder: error: no \"{settings.Until}\" within {settings.Timeout!.Value.TotalSeconds:0} s");
                return ExitCodes.TimedOut;
            }

            return ExitCodes.Ok;
        }

        return ExitCodes.Ok;
    }

    /// <summary>Emits every <c>--emit</c> in order, each awaiting its ack; an error ack ends the tool with the code's exit code.</summary>
    private static async Task<int?> EmitAllAsync(GatewayConnection connection, ListenSettings settings, EventPrinter printer, TextWriter error, CancellationToken cancellationToken)
    {
        foreach (var (name, args) in settings.Emits)
        {
            var ack = await connection.EmitAsync(name, args, cancellationToken);
            printer.PrintAck(name, ack);
            if (EventPrinter.AckError(ack) is { } failure)
            {
                await error.WriteLineAsync($"builder: error: {name} refused: {failure.Code}: {failure.Message}");
                return CliException.ExitCodeOf(failure.Code);
            }
        }

        return null;
    }
}
