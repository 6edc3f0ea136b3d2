using Builder.Events;

namespace Builder.Runner.Simulation;

/// <summary>
/// Common behaviour of the simulated agents: each phase is a few tasks with progress, paced in
/// simulated time, with injected faults thrown at the start of the phase.
/// </summary>
public abstract class SimulatedAgent(RequirementsModel model) : IAgent
{
    protected RequirementsModel Model { get; } = model;

    public abstract string AgentType { get; }

    public abstract IReadOnlyCollection<string> Phases { get; }

    public virtual int OrderIn(string phase) => 0;

    public double EstimateSeconds(string phase) => Tasks(phase).Sum(t => t.Seconds);

    /// <summary>The tasks of a phase: what the card shows, and how long each takes.</summary>
    protected abstract IReadOnlyList<(string Task, double Seconds)> Tasks(string phase);

    /// <summary>The phase's result, published at its end (null for none).</summary>
    protected virtual Task<(object Output, string Summary)?> ProduceAsync(string phase, AgentContext context) => Task.FromResult<(object, string)?>(null);

    public async Task RunPhaseAsync(string phase, AgentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.ThrowInjectedFault();
        var tasks = Tasks(phase);
        for (var i = 0; i < tasks.Count; i++)
        {
            var (task, seconds) = tasks[i];
            await context.ReportAsync("working", task, i * 100 / tasks.Count, $"{Title(phase)}: step {i + 1} of {tasks.Count}");
            await context.WorkAsync(seconds);
        }

        var produced = await ProduceAsync(phase, context);
        if (produced is { } result)
        {
            await context.OutputAsync(result.Output, result.Summary);
        }

        var last = phase == BuildPhases.Validate || Phases.Last() == phase;
        await context.ReportAsync(last ? "completed" : "idle", null, 100, $"{Title(phase)} done");
    }

    private static string Title(string phase) => char.ToUpperInvariant(phase[0]) + phase[1..];

    protected string List(IEnumerable<string> items) => string.Join(", ", items);
}

public sealed class DatabaseAgent(RequirementsModel model) : SimulatedAgent(model)
{
    public override string AgentType => "database";

    public override IReadOnlyCollection<string> Phases => [BuildPhases.Analyze, BuildPhases.Design, BuildPhases.Generate];

    protected override IReadOnlyList<(string, double)> Tasks(string phase) => phase switch
    {
        BuildPhases.Analyze => [("Identifying data entities in the requirements", 4)],
        BuildPhases.Design => [("Designing the schema for " + List(Model.Entities.Select(e => e.Name)), 6), ("Choosing keys and indexes", 3)],
        _ => [("Writing migrations", 6)],
    };

    protected override Task<(object, string)?> ProduceAsync(string phase, AgentContext context)
    {
        if (phase != BuildPhases.Generate)
        {
            return Task.FromResult<(object, string)?>(null);
        }

        var entities = Model.Entities.Select(e => new
        {
            name = e.Name,
            table = e.Table,
            fields = e.Fields.Select(f => new { name = f.Name, type = f.Type, required = f.Required, unique = f.Unique, references = f.References }),
            relationships = e.Relationships.Select(r => new { kind = r.Kind, target = r.Target, via = r.Via }),
        }).ToList();
        var migrations = Model.Entities.Select(Migration).ToList();
        foreach (var join in Model.Entities.SelectMany(e => e.Relationships.Where(r => r.Kind == "many-to-many").Select(r => (e, r))))
        {
            var left = RequirementsModel.Column(join.e.Name) + "_id";
            var right = RequirementsModel.Column(join.r.Target) + "_id";
            migrations.Add($"CREATE TABLE {join.r.Via} (\n  {left} UUID NOT NULL REFERENCES {join.e.Table}(id),\n  {right} UUID NOT NULL REFERENCES {RequirementsModel.Plural(join.r.Target)}(id),\n  quantity INTEGER NOT NULL DEFAULT 1,\n  PRIMARY KEY ({left}, {right})\n);");
        }

        var summary = $"Created {entities.Count} data table{(entities.Count == 1 ? string.Empty : "s")}: {List(Model.Entities.Select(e => e.Name))}";
        return Task.FromResult<(object, string)?>((new { entities, migrations }, summary));
    }

    private static string Migration(EntitySpec entity)
    {
        var columns = entity.Fields.Select(f =>
        {
            var column = $"  {RequirementsModel.Column(f.Name)} {RequirementsModel.SqlType(f.Type)}";
            if (f.Name == "id")
            {
                return column + " PRIMARY KEY";
            }

            column += f.Required ? " NOT NULL" : string.Empty;
            column += f.Unique ? " UNIQUE" : string.Empty;
            column += f.Name == "createdAt" ? " DEFAULT CURRENT_TIMESTAMP" : string.Empty;
            column += f.References is { } target ? $" REFERENCES {RequirementsModel.Plural(target)}(id)" : string.Empty;
            return column;
        });
        return $"CREATE TABLE {entity.Table} (\n{string.Join(",\n", columns)}\n);";
    }
}

public sealed class BackendAgent(RequirementsModel model) : SimulatedAgent(model)
{
    public override string AgentType => "backend";

    public override IReadOnlyCollection<string> Phases => [BuildPhases.Analyze, BuildPhases.Generate, BuildPhases.Validate];

    public override int OrderIn(string phase) => phase == BuildPhases.Generate ? 1 : 0;

    protected override IReadOnlyList<(string, double)> Tasks(string phase) => phase switch
    {
        BuildPhases.Analyze => [("Mapping the REST resources", 3)],
        BuildPhases.Generate => [.. Model.Entities.Select(e => ($"Generating the /api/{e.Table} endpoints", 4.0))],
        _ => [("Running the API contract tests", 5)],
    };

    protected override Task<(object, string)?> ProduceAsync(string phase, AgentContext context)
    {
        if (phase != BuildPhases.Generate)
        {
            return Task.FromResult<(object, string)?>(null);
        }

        var endpoints = new List<object>();
        foreach (var e in Model.Entities)
        {
            endpoints.Add(new { method = "GET", path = $"/api/{e.Table}", entity = e.Name, description = $"List {e.Table}" });
            endpoints.Add(new { method = "POST", path = $"/api/{e.Table}", entity = e.Name, description = $"Create a {e.Name}" });
            endpoints.Add(new { method = "GET", path = $"/api/{e.Table}/:id", entity = e.Name, description = $"Get one {e.Name}" });
            endpoints.Add(new { method = "PUT", path = $"/api/{e.Table}/:id", entity = e.Name, description = $"Update a {e.Name}" });
            endpoints.Add(new { method = "DELETE", path = $"/api/{e.Table}/:id", entity = e.Name, description = $"Delete a {e.Name}" });
        }

        if (Model.Has("User"))
        {
            endpoints.Add(new { method = "POST", path = "/api/auth/register", entity = "User", description = "Register a user" });
            endpoints.Add(new { method = "POST", path = "/api/auth/login", entity = "User", description = "Sign in and receive a token" });
        }

        return Task.FromResult<(object, string)?>((new { framework = "express", endpoints }, $"Created {endpoints.Count} API endpoints for {List(Model.Entities.Select(e => e.Name))}"));
    }
}

public sealed class UiAgent(RequirementsModel model) : SimulatedAgent(model)
{
    public const string LayoutQuestion = "Which layout style do you prefer?";

    public static readonly DecisionOption[] LayoutOptions =
    [
        new("option-1", "Modern Dashboard", "Card-based layout with charts"),
        new("option-2", "Classic Table", "Traditional table-based layout"),
    ];

    public override string AgentType => "ui";

    public override IReadOnlyCollection<string> Phases => [BuildPhases.Analyze, BuildPhases.Design, BuildPhases.Generate, BuildPhases.Validate];

    public override int OrderIn(string phase) => phase == BuildPhases.Generate ? 2 : 0;

    protected override IReadOnlyList<(string, double)> Tasks(string phase) => phase switch
    {
        BuildPhases.Analyze => [("Listing the screens", 3)],
        BuildPhases.Design => [("Sketching the page layouts", 5)],
        BuildPhases.Generate => [("Generating UI layout for Dashboard page", 5), .. Model.Entities.Select(e => ($"Generating the {e.Name} pages", 3.0))],
        _ => [("Checking accessibility and responsiveness", 4)],
    };

    protected override async Task<(object, string)?> ProduceAsync(string phase, AgentContext context)
    {
        if (phase == BuildPhases.Design)
        {
            await context.AskAsync(LayoutQuestion, LayoutOptions, 300, "option-1");
            return null;
        }

        if (phase != BuildPhases.Generate)
        {
            return null;
        }

        var layout = context.Choices.GetValueOrDefault(LayoutQuestion, "option-1");
        var modern = layout == "option-1";
        var shared = modern ? new[] { "AppShell", "NavSidebar", "StatCard", "ChartPanel", "CardGrid" } : ["AppShell", "TopNav", "DataTable", "Pagination", "FilterBar"];
        var components = new List<string>(shared);
        var pages = new List<object> { new { name = "Dashboard", route = "/", components = modern ? new[] { "StatCard", "ChartPanel" } : ["DataTable"] } };
        foreach (var e in Model.Entities)
        {
            var list = modern ? $"{e.Name}Card" : $"{e.Name}Row";
            components.Add(list);
            components.Add($"{e.Name}Form");
            pages.Add(new { name = $"{e.Name}List", route = $"/{e.Table}", components = new[] { list, modern ? "CardGrid" : "DataTable" } });
            pages.Add(new { name = $"{e.Name}Detail", route = $"/{e.Table}/:id", components = new[] { $"{e.Name}Form" } });
        }

        var layoutName = LayoutOptions.First(o => o.Id == layout).Label;
        return (new { layout = layoutName, pages, components }, $"Generated {pages.Count} pages and {components.Count} components ({layoutName} layout)");
    }
}

public sealed class IntegrationAgent(RequirementsModel model) : SimulatedAgent(model)
{
    public override string AgentType => "integration";

    public override IReadOnlyCollection<string> Phases => [BuildPhases.Analyze, BuildPhases.Generate];

    public override int OrderIn(string phase) => phase == BuildPhases.Generate ? 1 : 0;

    protected override IReadOnlyList<(string, double)> Tasks(string phase) => phase switch
    {
        BuildPhases.Analyze => [("Finding the external services the app needs", 3)],
        _ => [("Wiring the connectors", 4)],
    };

    protected override Task<(object, string)?> ProduceAsync(string phase, AgentContext context)
    {
        if (phase != BuildPhases.Generate)
        {
            return Task.FromResult<(object, string)?>(null);
        }

        var connectors = new List<Connector>();
        if (Model.Has("User") || Model.Has("Customer"))
        {
            connectors.Add(new Connector("TransactionalEmail", "email", "Sign-up confirmation and password reset", [Model.Has("User") ? "User" : "Customer"]));
        }

        if (Model.Has("Order") || Model.Has("Invoice") || Model.Has("Booking"))
        {
            connectors.Add(new Connector("PaymentGateway", "payments", "Card payments at checkout", [.. Model.Entities.Where(e => e.Name is "Order" or "Invoice" or "Booking").Select(e => e.Name)]));
        }

        if (Model.Has("Product") || Model.Has("Post"))
        {
            connectors.Add(new Connector("FullTextSearch", "search", "Search across the catalogue", [.. Model.Entities.Where(e => e.Name is "Product" or "Post").Select(e => e.Name)]));
        }

        connectors.Add(new Connector("ObjectStorage", "storage", "Uploaded images and files", []));
        return Task.FromResult<(object, string)?>((new { connectors }, $"Configured {connectors.Count} connectors: {List(connectors.Select(c => c.Name))}"));
    }
}

public sealed record Connector(string Name, string Kind, string Purpose, string[] Entities);

/// <summary>
/// The deployment agent: builds the image, rolls it out and checks its health, reporting both the
/// deployment (deployment:progress) and its own card (agent:status:update, agent:output) as the
/// build's agents do.
/// </summary>
public sealed class DeploymentAgent : IDeploymentAgent
{
    private static readonly (string Stage, string Message, double Seconds)[] s_stages =
    [
        ("building", "Building Docker image...", 8),
        ("deploying", "Rolling out to the test environment...", 6),
        ("health-check", "Checking the app answers...", 3),
    ];

    public async Task<DeploymentResult> DeployAsync(DeploymentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        for (var index = 0; index < s_stages.Length; index++)
        {
            var (stage, message, seconds) = s_stages[index];
            await context.ReportAsync("working", message, index * 100 / s_stages.Length, $"Deploy: step {index + 1} of {s_stages.Length} ({stage})");
            if (stage == "deploying")
            {
                context.ThrowInjectedFault();
            }

            for (var progress = 0; progress < 100; progress += 50)
            {
                await context.ProgressAsync(stage, progress, message);
                await context.WorkAsync(seconds / 2);
            }

            await context.ProgressAsync(stage, 100, message);
        }

        var slug = new string(context.ProjectId.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray());
        var result = new DeploymentResult($"https://test-{slug}.aibuilder.app", "healthy");
        await context.OutputAsync(new { deploymentId = context.DeploymentId, environment = context.Environment, url = result.Url, healthStatus = result.HealthStatus, stages = s_stages.Select(s => s.Stage) }, $"Deployed to {result.Url} ({result.HealthStatus})");
        await context.ReportAsync("completed", null, 100, "Deploy done");
        return result;
    }
}

/// <summary>The simulated team for a build request.</summary>
public static class SimulatedTeam
{
    public static IReadOnlyList<IAgent> For(BuildRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = new RequirementsModel(request.Requirements);
        return [new DatabaseAgent(model), new BackendAgent(model), new UiAgent(model), new IntegrationAgent(model)];
    }

    public static IDeploymentAgent DeployerFor(BuildRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new DeploymentAgent();
    }
}
