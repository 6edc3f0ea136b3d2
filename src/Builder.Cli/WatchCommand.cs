using System.Text.Json;
using Spectre.Console;

namespace Builder.Cli;

/// <summary>What <c>watch</c> needs: the gateway, the user's token, the project and how to end.</summary>
public sealed record WatchSettings(GatewayAddress Address, string Token, string ProjectId, bool WaitForDeployment, bool Plain, TimeSpan? Timeout);

/// <summary>
/// <c>watch &lt;project&gt;</c>: joins the project (its snapshot first), folds every event into a
/// <see cref="BuildState"/> and draws it; after a disconnect the client reconnects and re-joins
/// with <c>lastSeq</c>, so the gateway replays exactly what was missed. Ends with the build's result.
/// </summary>
public static class WatchCommand
{
    public static async Task<int> RunAsync(WatchSettings settings, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        var state = new BuildState();
        var view = new WatchView(console, settings.ProjectId);
        var fatal = new TaskCompletionSource<CliException>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var connection = await GatewayConnection.ConnectAsync(settings.Address, JsonSerializer.SerializeToElement(new { token = settings.Token }), reconnect: true, GatewayConnection.DefaultTimeout, cancellationToken);
        var joined = 0;
        connection.Connected += () => _ = Task.Run(() => JoinAsync(connection, settings.ProjectId, state, error, fatal, ++joined, CancellationToken.None), CancellationToken.None);
        await JoinAsync(connection, settings.ProjectId, state, error, fatal, ++joined, cancellationToken);
        if (fatal.Task.IsCompleted)
        {
            throw await fatal.Task;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (settings.Timeout is { } timeout)
        {
            deadline.CancelAfter(timeout);
        }

        var interactive = !settings.Plain && console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi && !Console.IsOutputRedirected;
        int exit;
        try
        {
            if (interactive)
            {
                exit = ExitCodes.Failed;
                await console.Live(view.Render(state)).AutoClear(false).StartAsync(async live =>
                {
                    exit = await FollowAsync(connection, state, settings, fatal, () =>
                    {
                        live.UpdateTarget(view.Render(state));
                        live.Refresh();
                    }, deadline.Token);
                });
            }
            else
            {
                console.Profile.Out.Writer.WriteLine($"watching {settings.ProjectId} on {settings.Address.Server} (seq {state.LastSeq})");
                exit = await FollowAsync(connection, state, settings, fatal, () => view.WriteChanges(state), deadline.Token);
                console.Write(view.Render(state));
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (!interactive)
            {
                console.Write(view.Render(state));
            }

            throw new CliException(ExitCodes.TimedOut, $"The build of {settings.ProjectId} did not end within {settings.Timeout!.Value.TotalSeconds:0} s (state: {state.BuildStatus}).");
        }

        // what a resume after a disconnect is checked by: every seq after the first view, once
        await error.WriteLineAsync($"events: {state.Folded} folded up to seq {state.LastSeq}, {state.Repeated} repeated, {state.Missing} missing");
        console.Profile.Out.Writer.WriteLine($"build {state.Result}" + (state.DeploymentStatus is "succeeded" or "failed" ? $"; deployment {state.DeploymentStatus}: {state.DeploymentMessage}" : string.Empty));
        console.Profile.Out.Writer.Flush();
        return exit;
    }

    /// <summary>Reads the events until the build's result; returns the exit code.</summary>
    private static async Task<int> FollowAsync(GatewayConnection connection, BuildState state, WatchSettings settings, TaskCompletionSource<CliException> fatal, Action redraw, CancellationToken cancellationToken)
    {
        var seenRunning = state.BuildStatus == "running";
        redraw();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _ = fatal.Task.ContinueWith(_ => stop.Cancel(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            await foreach (var e in connection.Events.ReadAllAsync(stop.Token))
            {
                switch (e.Name)
                {
                    case GatewayConnection.DisconnectEvent:
                        throw new CliException(ExitCodes.Failed, $"Disconnected by the gateway ({e.Data?.GetString()}).");
                    case "project:snapshot":
                        state.ApplySnapshot(e.Data!.Value);
                        break;
                    case "error":
                        break;
                    default:
                        if (e.Data is { } data)
                        {
                            state.Apply(e.Name, data);
                        }

                        break;
                }

                seenRunning |= state.BuildStatus == "running";
                redraw();
                if (seenRunning && state.BuildEnded)
                {
                    if (state.BuildStatus != "completed")
                    {
                        return ExitCodes.Failed;
                    }

                    if (!settings.WaitForDeployment)
                    {
                        return ExitCodes.Ok;
                    }

                    if (state.DeploymentStatus is "succeeded" or "failed")
                    {
                        return state.DeploymentStatus == "succeeded" ? ExitCodes.Ok : ExitCodes.Failed;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (fatal.Task.IsCompleted)
        {
            throw await fatal.Task;
        }

        return ExitCodes.Failed;
    }

    /// <summary>join-project, with the last seq seen after a reconnection (the gateway replays what was missed).</summary>
    private static async Task JoinAsync(GatewayConnection connection, string projectId, BuildState state, TextWriter error, TaskCompletionSource<CliException> fatal, int attempt, CancellationToken cancellationToken)
    {
        var body = attempt > 1 && state.LastSeq > 0
            ? JsonSerializer.SerializeToElement(new { projectId, lastSeq = state.LastSeq })
            : JsonSerializer.SerializeToElement(new { projectId });
        if (attempt > 1)
        {
            await error.WriteLineAsync($"reconnected: re-joining {projectId} after seq {state.LastSeq}");
        }

        var ack = await connection.EmitAsync("join-project", [body], cancellationToken);
        if (ack is null)
        {
            fatal.TrySetResult(new CliException(ExitCodes.TimedOut, $"join-project {projectId} was not acknowledged."));
        }
        else if (EventPrinter.AckError(ack) is { } failure)
        {
            fatal.TrySetResult(new CliException(CliException.ExitCodeOf(failure.Code), $"join-project {projectId} refused: {failure.Code}: {failure.Message}", failure.Code));
        }
    }
}
