using Spectre.Console;
using Spectre.Console.Rendering;

namespace Builder.Cli;

/// <summary>
/// Draws a <see cref="BuildState"/>: a live table (a progress bar for the build and one per agent,
/// the phases, the decisions asked, the deployment) on an interactive console; on a non-interactive
/// one (redirected, CI) one line per change and the same table once at the end.
/// </summary>
public sealed class WatchView(IAnsiConsole console, string projectId)
{
    private string? _phase;
    private readonly Dictionary<string, string> _agentStatus = new(StringComparer.Ordinal);
    private readonly HashSet<string> _decisionsShown = new(StringComparer.Ordinal);
    private readonly HashSet<string> _decisionsResolved = new(StringComparer.Ordinal);
    private string? _deploymentStage;
    private string _buildStatus = "none";
    private string _deploymentStatus = "none";

    /// <summary>The whole view of the state, for the live display and the final summary.</summary>
    public IRenderable Render(BuildState state)
    {
        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.Title($"[bold]{Markup.Escape(projectId)}[/]");
        table.AddColumn("agent");
        table.AddColumn("status");
        table.AddColumn(new TableColumn("progress").NoWrap());
        table.AddColumn("task / message");
        var phases = state.Phases.Count == 0
            ? string.Empty
            : string.Join(" → ", state.Phases.Select(p => p == state.Phase ? $"[bold yellow]{Markup.Escape(p)}[/]" : Markup.Escape(p)));
        table.AddRow(
            new Markup("[bold]build[/]"),
            new Markup(StatusMarkup(state.BuildStatus)),
            new Markup(Bar(state.OverallProgress)),
            new Markup(phases + (state.BuildMessage is null ? string.Empty : "\n" + Markup.Escape(state.BuildMessage))));
        foreach (var agent in state.Agents.Values.OrderBy(a => a.AgentType, StringComparer.Ordinal))
        {
            var text = Markup.Escape(agent.Task ?? string.Empty);
            if (agent.Message is { Length: > 0 } message && message != agent.Task)
            {
                text += (text.Length > 0 ? "\n" : string.Empty) + $"[grey]{Markup.Escape(message)}[/]";
            }

            if (agent.LastError is not null)
            {
                text += $"\n[red]{Markup.Escape(agent.LastError)}[/]";
            }

            table.AddRow(new Markup(Markup.Escape(agent.AgentType)), new Markup(StatusMarkup(agent.Status)), new Markup(Bar(agent.Progress)), new Markup(text));
        }

        foreach (var decision in state.Decisions)
        {
            var answer = decision.Selected is null
                ? "[yellow]waiting[/]: " + string.Join(", ", decision.Options.Select(o => $"{Markup.Escape(o.Id)} = {Markup.Escape(o.Label)}"))
                : $"[green]{Markup.Escape(decision.Selected)}[/] ({Markup.Escape(decision.ResolvedBy ?? "?")})";
            table.AddRow(new Markup("[bold]decision[/]"), new Markup(Markup.Escape(decision.DecisionId)), new Text(string.Empty), new Markup($"{Markup.Escape(decision.Question)}\n{answer}"));
        }

        if (state.DeploymentStatus != "none")
        {
            table.AddRow(
                new Markup("[bold]deployment[/]"),
                new Markup(StatusMarkup(state.DeploymentStatus)),
                new Markup(Bar(state.DeploymentProgress)),
                new Markup(Markup.Escape($"{state.DeploymentStage} {state.DeploymentMessage}".Trim())));
        }

        if (state.Result is not null)
        {
            table.Caption($"build {Markup.Escape(state.Result)}");
        }

        return table;
    }

    /// <summary>The lines a non-interactive console gets for what changed since the last call.</summary>
    public IEnumerable<string> Changes(BuildState state)
    {
        if (state.BuildStatus == "running" && _buildStatus != "running")
        {
            _phase = null;
            _agentStatus.Clear();
            _deploymentStage = null;
            _deploymentStatus = "none";
            yield return $"build running: phases {string.Join(" → ", state.Phases)}";
        }

        _buildStatus = state.BuildStatus;
        if (state.Phase is not null && state.Phase != _phase)
        {
            _phase = state.Phase;
            yield return $"phase {state.Phase} ({state.OverallProgress}% overall)";
        }

        foreach (var agent in state.Agents.Values)
        {
            if (!_agentStatus.TryGetValue(agent.AgentId, out var was) || was != agent.Status)
            {
                _agentStatus[agent.AgentId] = agent.Status;
                yield return $"agent {agent.AgentType} {agent.Status} {agent.Progress}%: {agent.Task ?? agent.Message}";
            }
        }

        foreach (var decision in state.Decisions)
        {
            if (_decisionsShown.Add(decision.DecisionId))
            {
                yield return $"decision {decision.DecisionId} asked: {decision.Question} options: {string.Join(", ", decision.Options.Select(o => $"{o.Id} = {o.Label}"))}";
            }

            if (decision.Selected is not null && _decisionsResolved.Add(decision.DecisionId))
            {
                yield return $"decision {decision.DecisionId} answered: {decision.Selected} (by {decision.ResolvedBy})";
            }
        }

        if (state.DeploymentStatus == "running" && state.DeploymentStage != _deploymentStage)
        {
            _deploymentStage = state.DeploymentStage;
            yield return $"deployment {state.DeploymentStage} {state.DeploymentProgress}%: {state.DeploymentMessage}";
        }

        if (state.DeploymentStatus is "succeeded" or "failed" && _deploymentStatus != state.DeploymentStatus)
        {
            yield return $"deployment {state.DeploymentStatus}: {state.DeploymentMessage}";
        }

        _deploymentStatus = state.DeploymentStatus;
    }

    /// <summary>Writes the change lines to the console (non-interactive mode).</summary>
    public void WriteChanges(BuildState state)
    {
        foreach (var line in Changes(state))
        {
            // plain lines, not wrapped at the console's width: greppable whole
            console.Profile.Out.Writer.WriteLine(line);
        }

        console.Profile.Out.Writer.Flush();
    }

    private static string Bar(int percent)
    {
        const int width = 20;
        var p = Math.Clamp(percent, 0, 100);
        var full = p * width / 100;
        return $"[green]{new string('█', full)}[/][grey]{new string('░', width - full)}[/] {p,3}%";
    }

    private static string StatusMarkup(string status) => status switch
    {
        "completed" or "succeeded" => $"[green]{status}[/]",
        "failed" or "cancelled" => $"[red]{status}[/]",
        "working" or "running" => $"[blue]{status}[/]",
        "waiting" => $"[yellow]{status}[/]",
        _ => Markup.Escape(status),
    };
}
