using System.Text.Json;
using Builder.Auth;
using Builder.Contracts;
using Builder.Decisions;
using Builder.Events;
using Builder.Hub;
using Builder.Runner;

namespace Builder.Gateway;

/// <summary>The HTTP contract: producers' API, operations endpoints, development helpers.</summary>
internal static class GatewayEndpoints
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    public static void Map(WebApplication app, BuilderOptions options)
    {
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", async (IEventLog log) =>
        {
            await log.LatestSeqAsync("readyz-probe");
            return Results.Text("ready");
        });

        // the protocol's contracts, generated from the C# ones (docs/asyncapi.json, docs/builder-events.d.ts)
        var asyncApi = ProtocolContracts.AsyncApiJson();
        var typeScript = ProtocolContracts.TypeScript();
        app.MapGet("/asyncapi.json", () => Results.Text(asyncApi, "application/json; charset=utf-8"));
        app.MapGet("/builder-events.d.ts", () => Results.Text(typeScript, "application/typescript; charset=utf-8"));

        app.MapPost("/api/projects/{projectId}/events", PublishAsync);
        app.MapPost("/api/projects/{projectId}/decisions", CreateDecisionAsync);
        app.MapGet("/api/decisions/{decisionId}", GetDecisionAsync);
        app.MapPost("/api/projects/{projectId}/builds", StartBuildAsync);
        app.MapGet("/preview/{projectId}", PreviewAsync);
        app.MapPost("/api/projects/{projectId}/builds/{buildId}/cancel", CancelBuildAsync);

        if (app.Environment.IsDevelopment() && options.Dev.Enabled)
        {
            app.MapGet("/dev/token", (HttpRequest request, TimeProvider time) =>
            {
                var user = request.Query["user"].ToString() is { Length: > 0 } u ? u : "dev-user";
                var projects = request.Query["projects"].ToString() is { Length: > 0 } p ? p.Split(',') : ["*"];
                var role = request.Query["role"].ToString() is { Length: > 0 } r ? r : null;
                var token = TokenIssuer.Issue(options.Jwt.Secret!, user, user, projects, TimeSpan.FromHours(8), time, role, options.Jwt.Issuer, options.Jwt.Audience);
                return Results.Json(new { token, userId = user, projects, role });
            }).AddEndpointFilter(GatewayGuards.LoopbackOnlyFilter);
            DevDashboard.Map(app, options);
        }
    }

    private static IResult Problem(int status, string code, string message, object? fields = null) =>
        Results.Json(new { error = new { code, message, fields } }, s_json, statusCode: status);

    private static async Task<(JsonElement? Body, IResult? Error)> ReadBodyAsync(HttpRequest request, int maxBytes, bool allowArray = false)
    {
        if (request.ContentLength > maxBytes)
        {
            return (null, TooLarge(maxBytes));
        }

        // the body read from Kestrel's own buffers (no copy until it is whole), then parsed once
        // into a standalone element (no pooled document to clone)
        var reader = request.BodyReader;
        System.IO.Pipelines.ReadResult read;
        while (true)
        {
            read = await reader.ReadAsync(request.HttpContext.RequestAborted);
            if (read.Buffer.Length > maxBytes)
            {
                reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                return (null, TooLarge(maxBytes));
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                break;
            }

            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        try
        {
            return ParseBody(read.Buffer, allowArray);
        }
        finally
        {
            reader.AdvanceTo(read.Buffer.End);
        }
    }

    private static IResult TooLarge(int maxBytes) => Problem(413, "PAYLOAD_TOO_LARGE", $"The body is larger than {maxBytes} bytes.");

    private static (JsonElement? Body, IResult? Error) ParseBody(System.Buffers.ReadOnlySequence<byte> body, bool allowArray)
    {
        if (body.IsEmpty)
        {
            return (null, Problem(400, "INVALID_JSON", "The body is empty; a JSON object is expected."));
        }

        ReadOnlyMemory<byte> bytes = body.IsSingleSegment ? body.First : System.Buffers.BuffersExtensions.ToArray(body);
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
        {
            // JSON is UTF-8 (RFC 8259): strings that are not would fail later, when read
            return (null, Problem(400, "INVALID_JSON", "The body is not valid UTF-8."));
        }

        try
        {
            var json = new Utf8JsonReader(bytes.Span);
            var root = JsonElement.ParseValue(ref json);
            if (json.Read())
            {
                // ParseValue reads one value: anything after it is not a JSON body
                throw new JsonException($"'{(char)bytes.Span[(int)json.TokenStartIndex]}' after the end of the JSON value (position {json.TokenStartIndex}).");
            }

            if (root.ValueKind != JsonValueKind.Object && !(allowArray && root.ValueKind == JsonValueKind.Array))
            {
                return (null, Problem(400, "INVALID_JSON", allowArray ? "The body must be a JSON object or an array of them." : "The body must be a JSON object."));
            }

            return (root, null);
        }
        catch (JsonException ex)
        {
            return (null, Problem(400, "INVALID_JSON", "The body is not valid JSON: " + ex.Message));
        }
    }

    /// <summary>
    /// A producer's event <c>{type, payload}</c> → 202 with its envelope; or a JSON array of them
    /// (at most <c>Builder:Producers:MaxBatchEvents</c>, within the same body limit) → 202 with
    /// the envelopes in order, all published or none: a refusal names every error with its index.
    /// </summary>
    private static async Task<IResult> PublishAsync(string projectId, HttpRequest request, ProducerAuth auth, EventPublisher publisher, BuilderOptions options)
    {
        var check = await auth.CheckAsync(request, projectId);
        if (!check.Allowed)
        {
            return Problem(check.Status, check.Code!, check.Message!);
        }

        var (body, error) = await ReadBodyAsync(request, options.Limits.MaxEventBytes + 1024, allowArray: true);
        if (error is not null)
        {
            return error;
        }

        var root = body!.Value;
        if (root.ValueKind == JsonValueKind.Array)
        {
            return await PublishBatchAsync(projectId, root, request, publisher, options);
        }

        var fields = new List<FieldError>();
        var (type, payload) = ReadEvent(root, fields);
        if (fields.Count > 0)
        {
            return Problem(400, "VALIDATION_FAILED", "The event is invalid.", Fields(fields));
        }

        var result = await publisher.PublishAsync(projectId, type!, payload, request.HttpContext.RequestAborted);
        return result.Ok
            ? Results.Json(result.Envelope, s_json, statusCode: 202)
            : Problem(400, "VALIDATION_FAILED", "The event is invalid: " + string.Join("; ", result.Errors.Select(e => $"{e.Field} {e.Message}")), Fields(result.Errors));
    }

    private static async Task<IResult> PublishBatchAsync(string projectId, JsonElement array, HttpRequest request, EventPublisher publisher, BuilderOptions options)
    {
        var count = array.GetArrayLength();
        var max = options.Producers.MaxBatchEvents;
        if (count == 0 || count > max)
        {
            var rule = $"must hold 1 to {max} events (Builder:Producers:MaxBatchEvents)";
            return Problem(400, "VALIDATION_FAILED", $"The batch {rule}; it holds {count}.", new[] { new { index = (int?)null, field = "body", message = rule } });
        }

        var errors = new List<IndexedFieldError>();
        var drafts = new EventDraft[count];
        var i = 0;
        foreach (var element in array.EnumerateArray())
        {
            var fields = new List<FieldError>();
            var (type, payload) = ReadEvent(element, fields);
            foreach (var f in fields)
            {
                errors.Add(new IndexedFieldError(i, f.Field, f.Message));
            }

            drafts[i++] = new EventDraft(type ?? string.Empty, payload);
        }

        if (errors.Count == 0)
        {
            var result = await publisher.PublishBatchAsync(projectId, drafts, request.HttpContext.RequestAborted);
            if (result.Ok)
            {
                return Results.Json(result.Envelopes, s_json, statusCode: 202);
            }

            errors.AddRange(result.Errors);
        }

        return Problem(400, "VALIDATION_FAILED",
            $"The batch is invalid ({errors.Count} error(s)); no event of it was published: " + string.Join("; ", errors.Take(10).Select(e => e.Index is { } n ? $"[{n}] {e.Field} {e.Message}" : $"{e.Field} {e.Message}")),
            errors.Select(e => new { index = e.Index, field = e.Field, message = e.Message }).ToList());
    }

    /// <summary>Reads <c>{type, payload}</c>: the type when it is a publishable one, the payload when present; else adds the problems.</summary>
    private static (string? Type, JsonElement Payload) ReadEvent(JsonElement element, List<FieldError> fields)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            fields.Add(new FieldError("event", "must be a JSON object {type, payload}"));
            return (null, default);
        }

        string? type = null;
        if (!element.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
        {
            fields.Add(new FieldError("type", "is required (one of " + string.Join(", ", EventTypes.Publishable) + ")"));
        }
        else if (!EventValidator.TryGetText(typeElement, out var typeName) || Array.IndexOf(EventTypes.Publishable, typeName) < 0)
        {
            fields.Add(new FieldError("type", $"\"{typeName}\" cannot be published; expected one of " + string.Join(", ", EventTypes.Publishable)));
        }
        else
        {
            type = typeName;
        }

        if (!element.TryGetProperty("payload", out var payload))
        {
            fields.Add(new FieldError("payload", "is required"));
        }

        return (type, payload);
    }

    private static object Fields(IEnumerable<FieldError> errors) => errors.Select(e => new { field = e.Field, message = e.Message }).ToList();

    private static async Task<IResult> CreateDecisionAsync(string projectId, HttpRequest request, ProducerAuth auth, DecisionService decisions, BuilderOptions options)
    {
        var check = await auth.CheckAsync(request, projectId);
        if (!check.Allowed)
        {
            return Problem(check.Status, check.Code!, check.Message!);
        }

        if (!ProjectIds.IsValid(projectId))
        {
            return Problem(400, "VALIDATION_FAILED", "The project id is invalid.", Fields([new FieldError("projectId", ProjectIds.Rule)]));
        }

        var (body, error) = await ReadBodyAsync(request, options.Limits.MaxEventBytes);
        if (error is not null)
        {
            return error;
        }

        DecisionRequest? decision;
        try
        {
            var raw = body!.Value.Deserialize<DecisionBody>(s_json);
            decision = raw is null ? null : new DecisionRequest(raw.AgentId, raw.Question ?? string.Empty, raw.Options ?? [], raw.Timeout ?? 300, raw.DefaultOptionId);
        }
        catch (JsonException ex)
        {
            return Problem(400, "VALIDATION_FAILED", "The decision is invalid: " + ex.Message);
        }

        var problems = DecisionService.Validate(decision);
        if (problems.Count > 0)
        {
            return Problem(400, "VALIDATION_FAILED", "The decision is invalid: " + string.Join("; ", problems.Select(e => $"{e.Field} {e.Message}")), Fields(problems));
        }

        var created = await decisions.CreateAsync(projectId, decision!, request.HttpContext.RequestAborted);
        return Results.Json(new { decisionId = created.DecisionId, projectId, deadline = created.Deadline.ToUnixTimeMilliseconds(), defaultOptionId = created.DefaultOptionId }, s_json, statusCode: 201);
    }

    private static async Task<IResult> GetDecisionAsync(string decisionId, HttpRequest request, ProducerAuth auth, DecisionService decisions)
    {
        var check = await auth.CheckAsync(request, null);
        if (!check.Allowed)
        {
            return Problem(check.Status, check.Code!, check.Message!);
        }

        var wait = 0;
        var waitText = request.Query["wait"].ToString();
        if (waitText.Length > 0 && (!int.TryParse(waitText, out wait) || wait < 0 || wait > 300))
        {
            return Problem(400, "VALIDATION_FAILED", "wait must be an integer number of seconds between 0 and 300.", Fields([new FieldError("wait", "must be 0-300")]));
        }

        // a decision of a project the credential does not cover is answered like an unknown id
        var decision = await decisions.GetAsync(decisionId, request.HttpContext.RequestAborted);
        if (decision is null || !(await auth.CheckAsync(request, decision.ProjectId)).Allowed)
        {
            var notFound = DecisionService.NotFound(decisionId);
            return Problem(404, notFound.ErrorCode!, notFound.ErrorMessage!);
        }

        var resolution = decision.Resolution;
        if (resolution is null && wait > 0)
        {
            resolution = await decisions.WaitAsync(decisionId, TimeSpan.FromSeconds(wait), request.HttpContext.RequestAborted);
        }

        return Results.Json(new
        {
            decisionId,
            projectId = decision.ProjectId,
            status = resolution is null ? "pending" : "resolved",
            deadline = decision.Deadline.ToUnixTimeMilliseconds(),
            resolution = resolution is null ? null : new { selectedOptionId = resolution.SelectedOptionId, resolvedBy = resolution.ResolvedBy, userId = resolution.UserId, feedback = resolution.Feedback, resolvedAt = resolution.ResolvedAt.ToUnixTimeMilliseconds() },
        }, s_json);
    }

    private static async Task<IResult> StartBuildAsync(string projectId, HttpRequest request, ProducerAuth auth, BuildRunner runner, BuilderOptions options)
    {
        var check = await auth.CheckAsync(request, projectId);
        if (!check.Allowed)
        {
            return Problem(check.Status, check.Code!, check.Message!);
        }

        var startedBy = request.Headers["X-Api-Key"].Count > 0 ? "api-key" : "service";
        return await StartBuildCoreAsync(projectId, request, runner, options, startedBy, simulateRequired: true);
    }

    /// <summary>
    /// Reads, validates and starts a simulated build; the answers of the build API: 202 {buildId},
    /// 400 with the invalid fields, 409 BUILD_RUNNING, 503 TOO_MANY_BUILDS. The credential is the
    /// caller's business (the API checks a producer's, the development dashboard has none).
    /// </summary>
    internal static async Task<IResult> StartBuildCoreAsync(string projectId, HttpRequest request, BuildRunner runner, BuilderOptions options, string startedBy, bool simulateRequired)
    {
        var (body, error) = await ReadBodyAsync(request, 64 * 1024);
        if (error is not null)
        {
            return error;
        }

        BuildBody? raw;
        try
        {
            raw = body!.Value.Deserialize<BuildBody>(s_json);
        }
        catch (JsonException ex)
        {
            return Problem(400, "VALIDATION_FAILED", "The build request is invalid: " + ex.Message);
        }

        var fields = ValidateBuild(projectId, raw, simulateRequired);
        if (fields.Count > 0)
        {
            return Problem(400, "VALIDATION_FAILED", "The build request is invalid: " + string.Join("; ", fields.Select(e => $"{e.Field} {e.Message}")), Fields(fields));
        }

        var buildRequest = new BuildRequest
        {
            Requirements = raw!.Requirements!,
            Simulate = true,
            Deploy = raw.Deploy ?? false,
            Speed = raw.Speed ?? 1,
            Seed = raw.Seed ?? 0,
            Faults = raw.Faults ?? [],
            StartedBy = startedBy,
        };
        var started = await runner.StartAsync(projectId, buildRequest, request.HttpContext.RequestAborted);
        return started.Outcome switch
        {
            StartOutcome.Started => Results.Json(new { buildId = started.BuildId, projectId }, s_json, statusCode: 202),
            StartOutcome.AlreadyRunning => Results.Json(new { error = new { code = "BUILD_RUNNING", message = $"Project \"{projectId}\" already has a running build.", buildId = started.BuildId } }, s_json, statusCode: 409),
            _ => TooManyBuilds(request.HttpContext, options.Runner.MaxConcurrentBuilds),
        };
    }

    /// <summary>503 TOO_MANY_BUILDS: this node already runs Builder:Runner:MaxConcurrentBuilds builds; Retry-After says when to ask again.</summary>
    private static IResult TooManyBuilds(HttpContext context, int limit)
    {
        context.Response.Headers.RetryAfter = "5";
        return Problem(503, "TOO_MANY_BUILDS", $"This gateway node already runs its limit of {limit} builds at once (Builder:Runner:MaxConcurrentBuilds); nothing was started: try again after the Retry-After delay.");
    }

    private static List<FieldError> ValidateBuild(string projectId, BuildBody? body, bool simulateRequired)
    {
        var fields = new List<FieldError>();
        if (!ProjectIds.IsValid(projectId))
        {
            fields.Add(new FieldError("projectId", ProjectIds.Rule));
        }

        if (body is null)
        {
            fields.Add(new FieldError("body", "must be a JSON object"));
            return fields;
        }

        if (string.IsNullOrWhiteSpace(body.Requirements) || body.Requirements.Length > 10_000)
        {
            fields.Add(new FieldError("requirements", "is required (1-10000 characters)"));
        }

        if (simulateRequired ? body.Simulate != true : body.Simulate == false)
        {
            fields.Add(new FieldError("simulate", "must be true: this gateway runs simulated agents (real agents publish their events through the API)"));
        }

        if (body.Speed is { } speed && (speed < 0.01 || speed > 1_000_000))
        {
            fields.Add(new FieldError("speed", "must be between 0.01 and 1000000"));
        }

        var phases = new HashSet<string>(BuildPhases.All) { "deploy" };
        for (var i = 0; i < (body.Faults?.Count ?? 0); i++)
        {
            var fault = body.Faults![i];
            if (fault.Kind is not ("transient" or "fatal"))
            {
                fields.Add(new FieldError($"faults[{i}].kind", "must be transient or fatal"));
            }

            if (!phases.Contains(fault.Phase))
            {
                fields.Add(new FieldError($"faults[{i}].phase", "must be one of " + string.Join(", ", phases)));
            }

            if (fault.AgentType is not null && Array.IndexOf(EventTypes.AgentTypes, fault.AgentType) < 0)
            {
                fields.Add(new FieldError($"faults[{i}].agentType", "must be one of " + string.Join("|", EventTypes.AgentTypes)));
            }

            if (fault.Count is < 1 or > 100)
            {
                fields.Add(new FieldError($"faults[{i}].count", "must be between 1 and 100"));
            }
        }

        return fields;
    }

    private static async Task<IResult> CancelBuildAsync(string projectId, string buildId, HttpRequest request, ProducerAuth auth, BuildRunner runner)
    {
        var check = await auth.CheckAsync(request, projectId);
        if (!check.Allowed)
        {
            return Problem(check.Status, check.Code!, check.Message!);
        }

        var by = request.Query["by"].ToString() is { Length: > 0 } who ? who : "api";
        return await runner.CancelAsync(projectId, buildId, by)
            ? Results.Json(new { buildId, projectId, cancelled = true, cancelledBy = by }, s_json, statusCode: 202)
            : Problem(404, "BUILD_NOT_RUNNING", $"Build \"{buildId}\" is not running in project \"{projectId}\".");
    }

    /// <summary>
    /// The previewUrl of build:completed: what the agents produced, readable in a browser. Needs the
    /// access of <c>join-project</c> (a user token in <c>?token=</c> or <c>Authorization: Bearer</c>,
    /// the project in its <c>projects</c> claim or allowed by the access check) or a signed link
    /// (<see cref="PreviewLinks"/>): 401 without a valid credential, 403 FORBIDDEN without access,
    /// whether the project exists or not. Built from at most <c>Builder:Preview:MaxEvents</c> of
    /// the project's latest events.
    /// </summary>
    private static async Task<IResult> PreviewAsync(string projectId, HttpRequest request, IEventLog log, TokenValidator tokens, ProjectAccess access, PreviewLinks links, BuilderOptions options)
    {
        if (!ProjectIds.IsValid(projectId))
        {
            return Problem(400, "VALIDATION_FAILED", "The project id is invalid.", Fields([new FieldError("projectId", ProjectIds.Rule)]));
        }

        var refusal = await CheckPreviewAccessAsync(projectId, request, tokens, access, links);
        if (refusal is not null)
        {
            return refusal;
        }

        // the latest MaxEvents events only, in pages: a long log costs no more than a short one
        var outputs = new SortedDictionary<string, EventEnvelope>(StringComparer.Ordinal);
        var latest = await log.LatestSeqAsync(projectId, request.HttpContext.RequestAborted);
        var after = Math.Max(0, latest - options.Preview.MaxEvents);
        while (after < latest)
        {
            var page = await log.ReadAsync(projectId, after, (int)Math.Min(1000, latest - after), request.HttpContext.RequestAborted);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var e in page)
            {
                after = e.Seq;
                if (e.Type == EventTypes.AgentOutput && e.Payload.TryGetProperty("agentType", out var agentType))
                {
                    outputs[agentType.GetString()!] = e;
                }
            }
        }

        if (outputs.Count == 0)
        {
            return Problem(404, "NO_PREVIEW", $"Project \"{projectId}\" has no build output yet.");
        }

        var html = new System.Text.StringBuilder();
        var enc = System.Text.Encodings.Web.HtmlEncoder.Default;
        html.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Preview of ").Append(enc.Encode(projectId)).Append("</title>")
            .Append("<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}pre{background:#f4f4f6;padding:1rem;overflow:auto}</style></head><body>")
            .Append("<h1>Preview of ").Append(enc.Encode(projectId)).Append("</h1>");
        foreach (var (agentType, e) in outputs)
        {
            html.Append("<section><h2>").Append(enc.Encode(agentType)).Append(" agent</h2><p>")
                .Append(enc.Encode(e.Payload.GetProperty("summary").GetString() ?? string.Empty)).Append("</p><pre>")
                .Append(enc.Encode(JsonSerializer.Serialize(e.Payload.GetProperty("output"), s_indented))).Append("</pre></section>");
        }

        html.Append("</body></html>");
        return Results.Content(html.ToString(), "text/html; charset=utf-8");
    }

    /// <summary>Null when the request may see the project's preview, else the refusal.</summary>
    private static async Task<IResult?> CheckPreviewAccessAsync(string projectId, HttpRequest request, TokenValidator tokens, ProjectAccess access, PreviewLinks links)
    {
        var query = request.Query;
        if (query.ContainsKey("sig") || query.ContainsKey("expires"))
        {
            return links.Check(projectId, query["expires"].ToString(), query["sig"].ToString()) switch
            {
                PreviewLinkStatus.Valid => null,
                PreviewLinkStatus.Expired => Problem(401, PreviewLinkErrors.Expired, "The preview link has expired: open the project's latest previewUrl or use a token."),
                _ => Problem(401, PreviewLinkErrors.Invalid, "The preview link's signature is not valid for this project and expiry."),
            };
        }

        var token = query["token"].ToString();
        var authorization = request.Headers.Authorization.ToString();
        if (token.Length == 0 && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = authorization["Bearer ".Length..].Trim();
        }

        if (token.Length == 0)
        {
            return Problem(401, TokenErrors.Missing, "A credential is required: a user token as ?token= or Authorization: Bearer, or a signed preview link (?expires=&sig=).");
        }

        var result = await tokens.ValidateAsync(token);
        if (!result.IsValid)
        {
            return Problem(401, result.ErrorCode!, result.ErrorMessage!);
        }

        // as join-project answers: the same refusal whether the project exists or not
        return await access.MayAccessAsync(result.Identity!, projectId, request.HttpContext.RequestAborted)
            ? null
            : Problem(403, "FORBIDDEN", $"You may not access project \"{projectId}\".");
    }

    private static readonly JsonSerializerOptions s_indented = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private sealed record BuildBody(string? Requirements, bool? Simulate, bool? Deploy, double? Speed, int? Seed, List<FaultSpec>? Faults);

    private sealed record DecisionBody(string? AgentId, string? Question, List<DecisionOption>? Options, int? Timeout, string? DefaultOptionId);
}
