using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Builder.Auth;
using Builder.Decisions;
using Builder.Events;
using Builder.Hub;

namespace Builder.Contracts;

/// <summary>One event of the <c>/builder</c> namespace: its name, what it is, its argument's schema, and (client → server) its ack's.</summary>
public sealed record EventContract(string Name, string Summary, JsonObject Schema, JsonObject? Ack = null);

/// <summary>
/// The protocol of the <c>/builder</c> namespace as data, generated from the C# contracts: the
/// payload schemas are recorded from <see cref="EventValidator"/>'s own checks, the enumerations
/// from <see cref="EventTypes"/>, the error codes from the code constants. From it come the
/// AsyncAPI 3.0 document (<c>/asyncapi.json</c>, <c>docs/asyncapi.json</c>) and the TypeScript
/// declarations of the official client (<c>docs/builder-events.d.ts</c>).
/// </summary>
public static class ProtocolContracts
{
    public const string Version = "1.0.0";

    /// <summary>Every error code the gateway sends (the <c>error</c> event, acks, connect_error, HTTP answers), with where it comes from.</summary>
    public static IReadOnlyList<(string Code, string Source)> ErrorCodeList { get; } =
    [
        .. Constants(typeof(ErrorCodes)).Select(c => (c, "error event / ack")),
        .. Constants(typeof(TokenErrors)).Select(c => (c, "connect_error data.code / error event / HTTP 401")),
        .. Constants(typeof(DecisionErrors)).Where(c => c != ErrorCodes.Forbidden).Select(c => (c, "user:decision:response ack / error event / HTTP 404")),
    ];

    /// <summary>The server → client events.</summary>
    public static IReadOnlyList<EventContract> ServerEvents { get; } = BuildServerEvents();

    /// <summary>The client → server events (each may carry a Socket.IO ack).</summary>
    public static IReadOnlyList<EventContract> ClientEvents { get; } = BuildClientEvents();

    private static List<EventContract> BuildServerEvents()
    {
        var events = new List<EventContract>
        {
            new("authenticated", "The connection's identity (after the handshake, and after each authenticate).", Obj(("userId", Str(), true), ("username", Str(), true))),
            new("project-joined", "The answer to join-project, after the replay or the snapshot.", Obj(("projectId", ProjectId(), true), ("members", Int(0), true), ("seq", Int(0), true), ("replayed", Int(0), false))),
            new("project:snapshot", "The project's state when joined without a usable lastSeq: agents, build, pending decisions, deployment.", Obj(("projectId", ProjectId(), true), ("seq", Int(0), true), ("agents", Arr(new JsonObject { ["type"] = "object" }), true), ("build", Nullable(new JsonObject { ["type"] = "object" }), true), ("pendingDecisions", Arr(new JsonObject { ["type"] = "object" }), true), ("deployment", Nullable(new JsonObject { ["type"] = "object" }), true))),
            new("ping", "The application heartbeat (every Heartbeat:IntervalSeconds): answer with pong.", new JsonObject { ["type"] = "null" }),
        };
        var summaries = new Dictionary<string, string>
        {
            [EventTypes.AgentStatusUpdate] = "An agent's status and progress.",
            [EventTypes.AgentOutput] = "An agent finished a task and outputs its result.",
            [EventTypes.AgentError] = "An agent failed (retryable or not).",
            [EventTypes.BuildStarted] = "The build started.",
            [EventTypes.BuildProgress] = "The build's phase and progress.",
            [EventTypes.BuildCompleted] = "The build completed.",
            [EventTypes.BuildFailed] = "The build failed.",
            [EventTypes.BuildCancelled] = "The build was cancelled.",
            [EventTypes.DeploymentProgress] = "The deployment's stage and progress.",
            [EventTypes.DeploymentSuccess] = "The deployment succeeded.",
            [EventTypes.DeploymentFailed] = "The deployment failed.",
            [EventTypes.Error] = "An error: of a client's event (its code), or published by a producer.",
        };
        foreach (var type in EventTypes.Publishable)
        {
            events.Add(new(type, summaries[type], Envelope(type, EventValidator.PayloadSchema(type)!, gatewayError: type == EventTypes.Error)));
        }

        var option = Obj(("id", Str(), true), ("label", Str(), true), ("description", Str(nullable: true), false), ("preview", Str(nullable: true), false));
        events.Add(new(EventTypes.DecisionRequired, "The user must choose: answer with user:decision:response before the deadline, or the default is taken.", Envelope(EventTypes.DecisionRequired, Obj(
            ("projectId", ProjectId(), true), ("agentId", Str(nullable: true), false), ("decisionId", Str(), true), ("question", Str(), true),
            ("options", Arr(option, minItems: 1), true), ("timeout", Int(1), true), ("defaultOptionId", Str(), true), ("deadline", Int(0), true)), gatewayError: false)));
        events.Add(new(EventTypes.DecisionResolved, "A decision ended: answered by a user, defaulted at its timeout, or cancelled with its build.", Envelope(EventTypes.DecisionResolved, Obj(
            ("decisionId", Str(), true), ("resolvedBy", Enum("user", "timeout", "cancelled"), true), ("selectedOptionId", Str(), false), ("userId", Str(), false), ("feedback", Str(), false)), gatewayError: false)));
        return events;
    }

    private static List<EventContract> BuildClientEvents()
    {
        static JsonObject Error() => Obj(("code", Str(), true), ("message", Str(), true), ("details", [], false));
        static JsonObject Ack(params (string Name, JsonObject Schema, bool Required)[] fields) => new()
        {
            ["oneOf"] = new JsonArray(
                Obj([("ok", Const(true), true), .. fields]),
                Obj(("ok", Const(false), true), ("error", Error(), true))),
        };

        var lastSeq = Int(0);
        lastSeq["description"] = "The seq of the last event the client has: the gateway replays what follows (or sends a snapshot when it is no longer in the log).";
        return
        [
            new("authenticate", "Re-authenticates the connection with a new token (e.g. before the old one expires).", Obj(("token", Str(), true)), Ack(("userId", Str(), true), ("username", Str(), true))),
            new("join-project", "Joins the project's room: the events missed after lastSeq (or a snapshot), then project-joined, then live events.", Obj(("projectId", ProjectId(), true), ("lastSeq", Nullable(lastSeq), false)), Ack(("projectId", ProjectId(), true), ("members", Int(0), true), ("seq", Int(0), true), ("replayed", Int(0), false))),
            new("leave-project", "Leaves the project's room.", Obj(("projectId", ProjectId(), true)), Ack(("projectId", ProjectId(), true))),
            new("user:decision:response", "Answers a decision (the first valid answer wins).", Obj(("decisionId", Str(), true), ("selectedOptionId", Str(), true), ("feedback", Str(nullable: true), false)), Ack(("decisionId", Str(), true), ("selectedOptionId", Str(), true), ("resolvedBy", Const("user"), true))),
            new("pong", "The answer to ping.", new JsonObject { ["type"] = "null" }),
        ];
    }

    /// <summary>The AsyncAPI 3.0 document of the namespace (the Socket.IO convention: the namespace is the channel, each event a message).</summary>
    public static JsonObject AsyncApi()
    {
        var messages = new JsonObject();
        var schemas = new JsonObject();
        var channelMessages = new JsonObject();
        var operations = new JsonObject();
        void Add(EventContract e, string action)
        {
            var id = Id(e.Name);
            schemas[id] = e.Schema.DeepClone();
            var message = new JsonObject
            {
                ["name"] = e.Name,
                ["title"] = e.Name,
                ["summary"] = e.Summary,
                ["payload"] = new JsonObject { ["$ref"] = $"#/components/schemas/{id}" },
            };
            if (e.Ack is not null)
            {
                schemas[id + ".ack"] = e.Ack.DeepClone();
                message["x-ack"] = new JsonObject { ["$ref"] = $"#/components/schemas/{id}.ack" };
            }

            messages[id] = message;
            channelMessages[id] = new JsonObject { ["$ref"] = $"#/components/messages/{id}" };
            operations[(action == "send" ? "send." : "receive.") + id] = new JsonObject
            {
                ["action"] = action,
                ["channel"] = new JsonObject { ["$ref"] = "#/channels/builder" },
                ["summary"] = e.Summary,
                ["messages"] = new JsonArray(new JsonObject { ["$ref"] = $"#/channels/builder/messages/{id}" }),
            };
        }

        foreach (var e in ServerEvents)
        {
            Add(e, "send");
        }

        foreach (var e in ClientEvents)
        {
            Add(e, "receive");
        }

        var codes = new JsonArray([.. ErrorCodeList.Select(c => (JsonNode?)new JsonObject { ["code"] = c.Code, ["where"] = c.Source })]);
        return new JsonObject
        {
            ["asyncapi"] = "3.0.0",
            ["info"] = new JsonObject
            {
                ["title"] = "Builder real-time gateway",
                ["version"] = Version,
                ["description"] = "The /builder Socket.IO namespace (Socket.IO v5 over Engine.IO v4, path /socket.io/). "
                    + "Authenticate in the handshake (auth.token, a JWT); a refusal is a connect_error whose data.code is one of the token codes. "
                    + "Every client event may carry an ack ({ok: true, ...} or {ok: false, error: {code, message, details}}) and its mistakes also come as the error event. "
                    + "Generated from the gateway's C# contracts (src/Builder/Contracts): do not edit by hand.",
                ["x-error-codes"] = codes,
            },
            ["defaultContentType"] = "application/json",
            ["servers"] = new JsonObject
            {
                ["development"] = new JsonObject
                {
                    ["host"] = "localhost:3001",
                    ["protocol"] = "ws",
                    ["pathname"] = "/socket.io",
                    ["description"] = "`dotnet run --project src/Builder.Gateway`",
                },
            },
            ["channels"] = new JsonObject
            {
                ["builder"] = new JsonObject
                {
                    ["address"] = "/builder",
                    ["title"] = "The /builder namespace",
                    ["messages"] = channelMessages,
                },
            },
            ["operations"] = operations,
            ["components"] = new JsonObject { ["messages"] = messages, ["schemas"] = schemas },
        };
    }

    /// <summary>The AsyncAPI document as the gateway serves it and docs/asyncapi.json holds it (indented, LF, final newline).</summary>
    public static string AsyncApiJson() => AsyncApi().ToJsonString(new JsonSerializerOptions { WriteIndented = true }).ReplaceLineEndings("\n") + "\n";

    /// <summary>
    /// TypeScript declarations for the official client: every event's type, <c>ServerToClientEvents</c>
    /// and <c>ClientToServerEvents</c>, so that <c>io(...)</c> is a <c>Socket&lt;ServerToClientEvents, ClientToServerEvents&gt;</c>.
    /// </summary>
    public static string TypeScript()
    {
        var sb = new StringBuilder();
        sb.Append("// The /builder namespace of the Builder gateway, for socket.io-client 4:\n")
            .Append("//   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io('http://localhost:3001/builder', { auth: { token } });\n")
            .Append("// Generated from the gateway's C# contracts (src/Builder/Contracts): do not edit by hand.\n\n");
        sb.Append("/** The error codes the gateway sends (error event, acks, connect_error data.code, HTTP answers). */\n")
            .Append("export type GatewayErrorCode =\n");
        foreach (var (code, _) in ErrorCodeList.DistinctBy(c => c.Code))
        {
            sb.Append("  | \"").Append(code).Append("\"\n");
        }

        sb.Append(";\n\n");
        foreach (var e in ServerEvents)
        {
            sb.Append("/** ").Append(e.Summary).Append(" */\n")
                .Append("export type ").Append(TypeName(e.Name)).Append("Event = ").Append(Ts(e.Schema, 0)).Append(";\n\n");
            if (e.Schema["properties"] is JsonObject properties && properties.ContainsKey("payload"))
            {
                sb.Append("export type ").Append(TypeName(e.Name)).Append("Payload = ").Append(TypeName(e.Name)).Append("Event[\"payload\"];\n\n");
            }
        }

        foreach (var e in ClientEvents)
        {
            sb.Append("/** ").Append(e.Summary).Append(" */\n")
                .Append("export type ").Append(TypeName(e.Name)).Append("Payload = ").Append(Ts(e.Schema, 0)).Append(";\n\n");
            if (e.Ack is not null)
            {
                sb.Append("export type ").Append(TypeName(e.Name)).Append("Ack = ").Append(Ts(e.Ack, 0)).Append(";\n\n");
            }
        }

        sb.Append("/** What the gateway emits to a client of /builder. */\nexport interface ServerToClientEvents {\n");
        foreach (var e in ServerEvents)
        {
            sb.Append("  \"").Append(e.Name).Append("\": (event: ").Append(TypeName(e.Name)).Append("Event) => void;\n");
        }

        sb.Append("}\n\n/** What a client of /builder emits (the optional last argument is the ack callback). */\nexport interface ClientToServerEvents {\n");
        foreach (var e in ClientEvents)
        {
            sb.Append("  \"").Append(e.Name).Append("\": (");
            sb.Append(e.Name == "pong" ? "payload?: null" : $"payload: {TypeName(e.Name)}Payload");
            if (e.Ack is not null)
            {
                sb.Append(", ack?: (response: ").Append(TypeName(e.Name)).Append("Ack) => void");
            }

            sb.Append(") => void;\n");
        }

        sb.Append("}\n");
        return sb.ToString();
    }

    /// <summary>The protocol's reference as Markdown (<c>docs/protocol.md</c>): each event's fields, types and constraints, the acks, the error codes.</summary>
    public static string Markdown()
    {
        var sb = new StringBuilder();
        sb.Append("# The `/builder` protocol\n\n")
            .Append("<!-- Generated from the gateway's C# contracts (src/Builder/Contracts) by ProtocolContracts.Markdown(); do not edit by hand: ")
            .Append("run tests/Contracts.Tests with BUILDER_UPDATE_CONTRACTS=1. -->\n\n")
            .Append("Socket.IO v5 over Engine.IO v4: `io('http://localhost:3001/builder', { auth: { token } })` (path `/socket.io/`). ")
            .Append("The token is a JWT; a refused one is a `connect_error` whose `data.code` is `TOKEN_MISSING`, `TOKEN_INVALID` or `TOKEN_EXPIRED`. ")
            .Append("Machine-readable: [`asyncapi.json`](asyncapi.json) (AsyncAPI 3.0, also served at `/asyncapi.json`) and ")
            .Append("[`builder-events.d.ts`](builder-events.d.ts) (TypeScript, `Socket<ServerToClientEvents, ClientToServerEvents>`; also served at `/builder-events.d.ts`). ")
            .Append("The producers' HTTP API is in the README.\n\n")
            .Append("Events from the project's log arrive as the envelope `{type, timestamp, payload, projectId, seq, eventId}`; `seq` counts per project from 1, ")
            .Append("and `join-project` with `lastSeq` replays what followed it. Optional fields may also be `null`.\n\n");
        sb.Append("## Client → server\n\nEach may carry an ack: `{ok: true, ...}` or `{ok: false, error: {code, message, details}}`; a mistake also comes as the `error` event.\n\n");
        foreach (var e in ClientEvents)
        {
            sb.Append("### `").Append(e.Name).Append("`\n\n").Append(e.Summary).Append("\n\n");
            Fields(sb, e.Schema, string.Empty);
            if (e.Ack?["oneOf"]?[0] is JsonObject ok)
            {
                sb.Append("\nAck when ok:\n\n");
                Fields(sb, ok, string.Empty);
            }

            sb.Append('\n');
        }

        sb.Append("## Server → client\n\n");
        foreach (var e in ServerEvents)
        {
            sb.Append("### `").Append(e.Name).Append("`\n\n").Append(e.Summary).Append("\n\n");
            var payload = e.Schema["properties"]?["payload"] as JsonObject;
            if (payload is not null)
            {
                sb.Append("In the envelope; its `payload`:\n\n");
            }

            Fields(sb, payload ?? e.Schema, string.Empty);
            sb.Append('\n');
        }

        sb.Append("## Error codes\n\n| code | where |\n|---|---|\n");
        foreach (var (code, source) in ErrorCodeList)
        {
            sb.Append("| `").Append(code).Append("` | ").Append(source).Append(" |\n");
        }

        return sb.ToString();
    }

    private static void Fields(StringBuilder sb, JsonObject schema, string prefix)
    {
        if (schema["properties"] is not JsonObject properties || properties.Count == 0)
        {
            if (prefix.Length == 0)
            {
                sb.Append("Payload: `").Append(Ts(schema, 0).Replace('\n', ' ')).Append("`\n");
            }

            return;
        }

        if (prefix.Length == 0)
        {
            sb.Append("| field | type | required | constraints |\n|---|---|---|---|\n");
        }

        var required = schema["required"] is JsonArray r ? r.Select(x => x!.GetValue<string>()).ToHashSet(StringComparer.Ordinal) : [];
        foreach (var (name, node) in properties)
        {
            var property = (JsonObject)node!;
            var nested = property["properties"] is JsonObject { Count: > 0 } || property["items"]?["properties"] is JsonObject { Count: > 0 };
            var type = nested ? (property["items"] is null ? "object" : "array of objects") : Ts(property, 0).Replace('\n', ' ');
            var constraints = new List<string>();
            if (property["minimum"] is { } min)
            {
                constraints.Add(property["maximum"] is { } max ? $"{min}–{max}" : $"≥ {min}");
            }

            if (property["minLength"] is not null)
            {
                constraints.Add("non-empty");
            }

            if (property["minItems"] is not null)
            {
                constraints.Add("at least one");
            }

            if (property["pattern"] is not null)
            {
                constraints.Add("1-128 of `A-Za-z0-9-_.:`");
            }

            sb.Append("| `").Append(prefix).Append(name).Append("` | ").Append(type.Replace("|", "\\|", StringComparison.Ordinal)).Append(" | ")
                .Append(required.Contains(name) ? "yes" : "no").Append(" | ").Append(string.Join(", ", constraints)).Append(" |\n");
            if (property["properties"] is JsonObject { Count: > 0 })
            {
                Fields(sb, property, prefix + name + ".");
            }
            else if (property["items"] is JsonObject items && items["properties"] is JsonObject { Count: > 0 })
            {
                Fields(sb, items, prefix + name + "[].");
            }
        }
    }

    private static string TypeName(string eventName) =>
        string.Concat(eventName.Split(':', '-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));

    private static string Ts(JsonNode? node, int indent)
    {
        if (node is not JsonObject schema || schema.Count == 0)
        {
            return "unknown";
        }

        if (schema["oneOf"] is JsonArray oneOf)
        {
            return string.Join(" | ", oneOf.Select(o => Ts(o, indent)));
        }

        if (schema["const"] is JsonValue constant)
        {
            return constant.ToJsonString();
        }

        if (schema["enum"] is JsonArray values)
        {
            return string.Join(" | ", values.Select(v => v!.ToJsonString()));
        }

        var types = schema["type"] switch
        {
            JsonArray list => list.Select(t => t!.GetValue<string>()).ToList(),
            JsonValue one => [one.GetValue<string>()],
            _ => [],
        };
        var parts = types.Select(t => t switch
        {
            "string" => "string",
            "integer" or "number" => "number",
            "boolean" => "boolean",
            "null" => "null",
            "array" => schema["items"] is JsonObject items ? $"Array<{Ts(items, indent)}>" : "unknown[]",
            "object" => TsObject(schema, indent),
            _ => "unknown",
        }).ToList();
        return parts.Count == 0 ? "unknown" : string.Join(" | ", parts);
    }

    private static string TsObject(JsonObject schema, int indent)
    {
        if (schema["properties"] is not JsonObject properties || properties.Count == 0)
        {
            return "Record<string, unknown>";
        }

        var required = schema["required"] is JsonArray r ? r.Select(x => x!.GetValue<string>()).ToHashSet(StringComparer.Ordinal) : [];
        var pad = new string(' ', (indent + 1) * 2);
        var sb = new StringBuilder("{\n");
        foreach (var (name, property) in properties)
        {
            if (property is JsonObject p && p["description"] is JsonValue description)
            {
                sb.Append(pad).Append("/** ").Append(description.GetValue<string>()).Append(" */\n");
            }

            sb.Append(pad).Append(name).Append(required.Contains(name) ? ": " : "?: ").Append(Ts(property, indent + 1)).Append(";\n");
        }

        return sb.Append(new string(' ', indent * 2)).Append('}').ToString();
    }

    private static JsonObject Envelope(string type, JsonObject payload, bool gatewayError)
    {
        // the gateway's own error event is {type, timestamp, payload}; everything from the log also has projectId, seq, eventId
        var logged = !gatewayError;
        return Obj(
            ("type", Const(type), true),
            ("timestamp", Int(0), true),
            ("payload", payload, true),
            ("projectId", ProjectId(), logged),
            ("seq", Int(1), logged),
            ("eventId", Str(), logged));
    }

    private static string Id(string eventName) => eventName.Replace(':', '.');

    private static IEnumerable<string> Constants(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!);

    internal static JsonObject Obj(params (string Name, JsonObject Schema, bool Required)[] fields)
    {
        var properties = new JsonObject();
        var required = new JsonArray();
        foreach (var (name, schema, isRequired) in fields)
        {
            properties[name] = schema;
            if (isRequired)
            {
                required.Add(name);
            }
        }

        var obj = new JsonObject { ["type"] = "object", ["properties"] = properties };
        if (required.Count > 0)
        {
            obj["required"] = required;
        }

        return obj;
    }

    private static JsonObject Str(bool nullable = false) => nullable ? new() { ["type"] = new JsonArray("string", "null") } : new() { ["type"] = "string", ["minLength"] = 1 };

    private static JsonObject Int(long min) => new() { ["type"] = "integer", ["minimum"] = min };

    private static JsonObject Arr(JsonObject items, int minItems = 0)
    {
        var array = new JsonObject { ["type"] = "array", ["items"] = items };
        if (minItems > 0)
        {
            array["minItems"] = minItems;
        }

        return array;
    }

    private static JsonObject Enum(params string[] values) => new() { ["type"] = "string", ["enum"] = new JsonArray([.. values.Select(v => (JsonNode?)v)]) };

    private static JsonObject Const(string value) => new() { ["type"] = "string", ["const"] = value };

    private static JsonObject Const(bool value) => new() { ["type"] = "boolean", ["const"] = value };

    private static JsonObject Nullable(JsonObject schema)
    {
        if (schema["type"] is JsonValue t)
        {
            schema["type"] = new JsonArray(t.GetValue<string>(), "null");
        }

        return schema;
    }

    private static JsonObject ProjectId() => new()
    {
        ["type"] = "string",
        ["pattern"] = "^[A-Za-z0-9_.:-]{1,128}$",
        ["description"] = "A project id: " + ProjectIds.Rule,
    };
}
