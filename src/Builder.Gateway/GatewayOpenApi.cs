using System.Text.Json;
using System.Text.Json.Nodes;
using Builder.Contracts;
using Builder.Runner;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace Builder.Gateway;

/// <summary>
/// The OpenAPI 3.1 document of the HTTP endpoints, served at <c>/openapi.json</c> (checked in as
/// docs/openapi.json): Microsoft.AspNetCore.OpenApi lists the endpoints and their route
/// parameters; this transformer adds what the handlers read and write by hand: the JSON Schemas
/// of the producers' bodies (an event <c>{type, payload}</c> with each type's payload schema from
/// <see cref="EventValidator.PayloadSchema"/>, a batch of them, a decision, a build), their
/// responses and the error body, and the two credentials.
/// </summary>
internal static class GatewayOpenApi
{
    public const string DocumentName = "v1";
    public const string Path = "/openapi.json";

    public static void Add(IServiceCollection services) =>
        services.AddOpenApi(DocumentName, o =>
        {
            o.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1;
            // the development helpers (Development only) are not part of the API
            o.ShouldInclude = d => d.RelativePath is { Length: > 0 } p && !(p.StartsWith("dev/", StringComparison.Ordinal) || p.StartsWith("dashboard", StringComparison.Ordinal) || p.StartsWith("socket.io-client/", StringComparison.Ordinal));
            o.AddDocumentTransformer((document, _, _) =>
            {
                Describe(document);
                return Task.CompletedTask;
            });
        });

    public static void Map(WebApplication app) => app.MapOpenApi(Path);

    private static void Describe(OpenApiDocument document)
    {
        document.Info = new OpenApiInfo
        {
            Title = "Builder gateway HTTP API",
            Version = "1.0.0",
            Description = "The producers' API (agents and services publish events, ask decisions, start and cancel simulated builds), the previews and the operations endpoints. The real-time side (Socket.IO namespace /builder) is described by /asyncapi.json.",
        };

        // the same document whatever host asked for it (it is checked in)
        document.Servers = [];
        document.Tags = new HashSet<OpenApiTag>
        {
            new() { Name = "producers", Description = "Agents and services: credential X-Api-Key or a JWT with role agent/service" },
            new() { Name = "previews", Description = "What a build produced, for its viewers" },
            new() { Name = "operations", Description = "Probes and metrics" },
            new() { Name = "contracts", Description = "The real-time protocol's generated contracts" },
        };
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        foreach (var (name, schema) in Schemas())
        {
            document.Components.Schemas[name] = Parse<OpenApiSchema>(schema, document);
        }

        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal)
        {
            ["apiKey"] = new OpenApiSecurityScheme { Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "X-Api-Key", Description = "An ingest API key (Builder:Ingest:ApiKeys)" },
            ["bearer"] = new OpenApiSecurityScheme { Type = SecuritySchemeType.Http, Scheme = "bearer", BearerFormat = "JWT", Description = "A JWT with role agent or service (producers), or a user token (previews)" },
        };

        // the Prometheus scraping endpoint is not a route handler: described here
        document.Paths["/metrics"] = new OpenApiPathItem { Operations = new Dictionary<HttpMethod, OpenApiOperation> { [HttpMethod.Get] = new OpenApiOperation() } };
        foreach (var (path, method, operation) in Operations())
        {
            if (document.Paths.TryGetValue(path, out var item) && item.Operations is { } operations && operations.TryGetValue(method, out var target) && target is OpenApiOperation op)
            {
                op.Summary = operation["summary"]!.GetValue<string>();
                op.Tags = new HashSet<OpenApiTagReference> { new(operation["tag"]!.GetValue<string>(), document) };
                op.Description = operation["description"]?.GetValue<string>();
                if (operation["requestBody"] is JsonObject body)
                {
                    op.RequestBody = Parse<OpenApiRequestBody>(body, document);
                }

                op.Responses = new OpenApiResponses();
                foreach (var (status, response) in operation["responses"]!.AsObject())
                {
                    op.Responses[status] = Parse<OpenApiResponse>(response!.AsObject(), document);
                }

                if (operation["security"] is JsonArray schemes)
                {
                    op.Security = [.. schemes.Select(s => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(s!.GetValue<string>(), document)] = [] })];
                }
            }
            else
            {
                throw new InvalidOperationException($"The OpenAPI description names {method} {path}, which the gateway does not map.");
            }
        }
    }

    // (Microsoft.OpenApi keeps const as a string: a boolean constant is written as enum [true])
    private static T Parse<T>(JsonObject json, OpenApiDocument document)
        where T : IOpenApiElement
    {
        var parsed = OpenApiModelFactory.Parse<T>(json.ToJsonString(), OpenApiSpecVersion.OpenApi3_1, document, out var diagnostic, "json");
        if (parsed is null || diagnostic?.Errors.Count > 0)
        {
            throw new InvalidOperationException($"OpenAPI fragment {typeof(T).Name} is invalid: {string.Join("; ", diagnostic?.Errors.Select(e => e.Message) ?? [])}");
        }

        return parsed;
    }

    private static JsonObject Ref(string name) => new() { ["$ref"] = "#/components/schemas/" + name };

    private static JsonArray Strings(IEnumerable<string> values) => [.. values.Select(v => JsonValue.Create(v))];

    private static JsonObject Json(string schema) => new() { ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = Ref(schema) } } };

    private static JsonObject Response(string description, string? schema = null)
    {
        var response = schema is null ? new JsonObject() : Json(schema);
        response["description"] = description;
        return response;
    }

    private static JsonObject Error(string description) => Response(description, "Error");

    /// <summary>The component schemas, by name.</summary>
    private static IEnumerable<(string Name, JsonObject Schema)> Schemas()
    {
        var events = new JsonArray();
        foreach (var type in EventTypes.Publishable)
        {
            var payload = EventValidator.PayloadSchema(type) ?? new JsonObject { ["type"] = "object" };
            var name = "Event." + type.Replace(':', '.');
            events.Add(Ref(name));
            yield return (name, new JsonObject
            {
                ["type"] = "object",
                ["description"] = $"The event {type}.",
                ["required"] = Strings(["type", "payload"]),
                ["properties"] = new JsonObject { ["type"] = new JsonObject { ["const"] = type }, ["payload"] = payload },
                ["additionalProperties"] = false,
            });
        }

        yield return ("ProducerEvent", new JsonObject
        {
            ["description"] = "An event a producer publishes: its type (one of the publishable events) and its payload, checked like the protocol's validator checks it. A payload's projectId, when present, must be the route's.",
            ["oneOf"] = events,
        });
        yield return ("ProducerEventBatch", new JsonObject
        {
            ["type"] = "array",
            ["description"] = "Several events of one project published in one request, in order, all or none (at most Builder:Producers:MaxBatchEvents, 100 unless configured; a refusal names each error's index and field).",
            ["minItems"] = 1,
            ["maxItems"] = new ProducerOptions().MaxBatchEvents,
            ["items"] = Ref("ProducerEvent"),
        });
        yield return ("EventEnvelopeBatch", new JsonObject
        {
            ["type"] = "array",
            ["description"] = "The envelopes of a batch, in the order of its events (consecutive seqs).",
            ["items"] = Ref("EventEnvelope"),
        });
        yield return ("EventEnvelope", new JsonObject
        {
            ["type"] = "object",
            ["description"] = "An event as it was logged and broadcast to the project's viewers.",
            ["required"] = Strings(["type", "timestamp", "payload", "projectId", "seq", "eventId"]),
            ["properties"] = new JsonObject
            {
                ["type"] = new JsonObject { ["type"] = "string" },
                ["timestamp"] = new JsonObject { ["type"] = "integer", ["description"] = "Unix milliseconds of the publication" },
                ["payload"] = new JsonObject { ["type"] = "object" },
                ["projectId"] = new JsonObject { ["type"] = "string" },
                ["seq"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["description"] = "The event's position in the project's log (join-project lastSeq resumes after it)" },
                ["eventId"] = new JsonObject { ["type"] = "string" },
            },
        });
        yield return ("Error", new JsonObject
        {
            ["type"] = "object",
            ["description"] = "Every refusal: a code and a message naming the problem, and the invalid fields when there are some.",
            ["required"] = Strings(["error"]),
            ["properties"] = new JsonObject
            {
                ["error"] = new JsonObject
                {
                    ["type"] = "object",
                    ["required"] = Strings(["code", "message"]),
                    ["properties"] = new JsonObject
                    {
                        ["code"] = new JsonObject { ["type"] = "string", ["examples"] = Strings(["VALIDATION_FAILED", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "TOKEN_MISSING", "TOKEN_INVALID", "FORBIDDEN", "DECISION_NOT_FOUND", "BUILD_RUNNING", "BUILD_NOT_RUNNING", "TOO_MANY_BUILDS", "STORE_UNAVAILABLE", "NOT_FOUND"]) },
                        ["message"] = new JsonObject { ["type"] = "string" },
                        ["fields"] = new JsonObject
                        {
                            ["type"] = Strings(["array", "null"]),
                            ["items"] = new JsonObject
                            {
                                ["type"] = "object",
                                ["required"] = Strings(["field", "message"]),
                                ["properties"] = new JsonObject { ["field"] = new JsonObject { ["type"] = "string" }, ["message"] = new JsonObject { ["type"] = "string" } },
                            },
                        },
                        ["buildId"] = new JsonObject { ["type"] = "string", ["description"] = "BUILD_RUNNING: the running build" },
                    },
                },
            },
        });
        yield return ("DecisionRequest", new JsonObject
        {
            ["type"] = "object",
            ["description"] = "A question for the project's users; answered in the browser (user:decision:response) or defaulted at its timeout.",
            ["required"] = Strings(["question", "options"]),
            ["properties"] = new JsonObject
            {
                ["agentId"] = new JsonObject { ["type"] = "string" },
                ["question"] = new JsonObject { ["type"] = "string", ["minLength"] = 1 },
                ["options"] = new JsonObject
                {
                    ["type"] = "array",
                    ["minItems"] = 1,
                    ["description"] = "Option ids are unique",
                    ["items"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["required"] = Strings(["id", "label"]),
                        ["properties"] = new JsonObject
                        {
                            ["id"] = new JsonObject { ["type"] = "string", ["minLength"] = 1 },
                            ["label"] = new JsonObject { ["type"] = "string", ["minLength"] = 1 },
                            ["description"] = new JsonObject { ["type"] = "string" },
                            ["preview"] = new JsonObject { ["type"] = "string" },
                        },
                    },
                },
                ["timeout"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["maximum"] = 86400, ["default"] = 300, ["description"] = "Seconds until the default option is applied" },
                ["defaultOptionId"] = new JsonObject { ["type"] = "string", ["description"] = "One of the options' ids (default: the first)" },
            },
        });
        yield return ("DecisionCreated", new JsonObject
        {
            ["type"] = "object",
            ["required"] = Strings(["decisionId", "projectId", "deadline", "defaultOptionId"]),
            ["properties"] = new JsonObject
            {
                ["decisionId"] = new JsonObject { ["type"] = "string" },
                ["projectId"] = new JsonObject { ["type"] = "string" },
                ["deadline"] = new JsonObject { ["type"] = "integer", ["description"] = "Unix milliseconds" },
                ["defaultOptionId"] = new JsonObject { ["type"] = "string" },
            },
        });
        yield return ("DecisionStatus", new JsonObject
        {
            ["type"] = "object",
            ["required"] = Strings(["decisionId", "projectId", "status", "deadline", "resolution"]),
            ["properties"] = new JsonObject
            {
                ["decisionId"] = new JsonObject { ["type"] = "string" },
                ["projectId"] = new JsonObject { ["type"] = "string" },
                ["status"] = new JsonObject { ["enum"] = Strings(["pending", "resolved"]) },
                ["deadline"] = new JsonObject { ["type"] = "integer" },
                ["resolution"] = new JsonObject
                {
                    ["type"] = Strings(["object", "null"]),
                    ["properties"] = new JsonObject
                    {
                        ["selectedOptionId"] = new JsonObject { ["type"] = Strings(["string", "null"]) },
                        ["resolvedBy"] = new JsonObject { ["enum"] = Strings(["user", "timeout", "cancelled"]) },
                        ["userId"] = new JsonObject { ["type"] = Strings(["string", "null"]) },
                        ["feedback"] = new JsonObject { ["type"] = Strings(["string", "null"]) },
                        ["resolvedAt"] = new JsonObject { ["type"] = "integer" },
                    },
                },
            },
        });
        yield return ("BuildRequest", new JsonObject
        {
            ["type"] = "object",
            ["description"] = "A simulated build: the simulated agents work on the requirements and report every event of the protocol.",
            ["required"] = Strings(["requirements", "simulate"]),
            ["properties"] = new JsonObject
            {
                ["requirements"] = new JsonObject { ["type"] = "string", ["minLength"] = 1, ["maxLength"] = 10000 },
                ["simulate"] = new JsonObject { ["type"] = "boolean", ["enum"] = new JsonArray(true), ["description"] = "This gateway runs simulated agents only (real agents publish their events)" },
                ["deploy"] = new JsonObject { ["type"] = "boolean", ["default"] = false },
                ["speed"] = new JsonObject { ["type"] = "number", ["minimum"] = 0.01, ["maximum"] = 1000000, ["default"] = 1, ["description"] = "Simulated seconds per real second" },
                ["seed"] = new JsonObject { ["type"] = "integer" },
                ["faults"] = new JsonObject
                {
                    ["type"] = "array",
                    ["items"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject
                        {
                            ["kind"] = new JsonObject { ["enum"] = Strings(["transient", "fatal"]), ["default"] = "transient" },
                            ["phase"] = new JsonObject { ["enum"] = Strings([.. BuildPhases.All, "deploy"]) },
                            ["agentType"] = new JsonObject { ["enum"] = Strings(EventTypes.AgentTypes) },
                            ["count"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["maximum"] = 100 },
                        },
                    },
                },
            },
        });
        yield return ("BuildAccepted", new JsonObject
        {
            ["type"] = "object",
            ["required"] = Strings(["buildId", "projectId"]),
            ["properties"] = new JsonObject { ["buildId"] = new JsonObject { ["type"] = "string" }, ["projectId"] = new JsonObject { ["type"] = "string" } },
        });
        yield return ("BuildCancelled", new JsonObject
        {
            ["type"] = "object",
            ["required"] = Strings(["buildId", "projectId", "cancelled", "cancelledBy"]),
            ["properties"] = new JsonObject
            {
                ["buildId"] = new JsonObject { ["type"] = "string" },
                ["projectId"] = new JsonObject { ["type"] = "string" },
                ["cancelled"] = new JsonObject { ["type"] = "boolean", ["enum"] = new JsonArray(true) },
                ["cancelledBy"] = new JsonObject { ["type"] = "string" },
            },
        });
    }

    /// <summary>What each endpoint reads and answers (path, method, operation fragment).</summary>
    private static IEnumerable<(string Path, HttpMethod Method, JsonObject Operation)> Operations()
    {
        JsonObject Refusals(JsonObject responses, bool body)
        {
            if (body)
            {
                responses["400"] = Error("VALIDATION_FAILED (with the invalid fields) or INVALID_JSON");
                responses["413"] = Error("PAYLOAD_TOO_LARGE");
            }

            responses["401"] = Error("TOKEN_MISSING or TOKEN_INVALID: no valid producer credential");
            responses["403"] = Error("FORBIDDEN: the credential does not cover the project");
            responses["503"] = Error("STORE_UNAVAILABLE (with Retry-After): nothing was recorded, retry");
            return responses;
        }

        JsonArray Producer() => Strings(["apiKey", "bearer"]);

        yield return ("/api/projects/{projectId}/events", HttpMethod.Post, new JsonObject
        {
            ["tag"] = "producers",
            ["summary"] = "Publish a project event (or a batch of them)",
            ["description"] = "Validated, appended to the project's log (seq, eventId, timestamp) and broadcast to its viewers.",
            ["security"] = Producer(),
            ["requestBody"] = new JsonObject
            {
                ["required"] = true,
                ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["oneOf"] = new JsonArray(Ref("ProducerEvent"), Ref("ProducerEventBatch")) } } },
            },
            ["responses"] = Refusals(
                new JsonObject
                {
                    ["202"] = new JsonObject
                    {
                        ["description"] = "The logged event (its envelope), or for a batch the logged events (their envelopes, in order)",
                        ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["oneOf"] = new JsonArray(Ref("EventEnvelope"), Ref("EventEnvelopeBatch")) } } },
                    },
                },
                body: true),
        });
        yield return ("/api/projects/{projectId}/decisions", HttpMethod.Post, new JsonObject
        {
            ["tag"] = "producers",
            ["summary"] = "Ask the project's users a decision",
            ["security"] = Producer(),
            ["requestBody"] = new JsonObject { ["required"] = true, ["content"] = Json("DecisionRequest")["content"]!.DeepClone() },
            ["responses"] = Refusals(new JsonObject { ["201"] = Response("The decision, asked (user:decision:required published)", "DecisionCreated") }, body: true),
        });
        yield return ("/api/decisions/{decisionId}", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "producers",
            ["summary"] = "A decision's status; with ?wait=S (0-300) waits that long for its resolution",
            ["security"] = Producer(),
            ["responses"] = Refusals(new JsonObject
            {
                ["200"] = Response("The decision and its resolution, if any", "DecisionStatus"),
                ["400"] = Error("VALIDATION_FAILED: wait is not 0-300"),
                ["404"] = Error("DECISION_NOT_FOUND (also for a decision of a project the credential does not cover)"),
            }, body: false),
        });
        yield return ("/api/projects/{projectId}/builds", HttpMethod.Post, new JsonObject
        {
            ["tag"] = "producers",
            ["summary"] = "Start a simulated build",
            ["security"] = Producer(),
            ["requestBody"] = new JsonObject { ["required"] = true, ["content"] = Json("BuildRequest")["content"]!.DeepClone() },
            ["responses"] = Refusals(new JsonObject
            {
                ["202"] = Response("The build started", "BuildAccepted"),
                ["409"] = Error("BUILD_RUNNING: the project has a running build (its buildId)"),
            }, body: true),
        });
        yield return ("/api/projects/{projectId}/builds/{buildId}/cancel", HttpMethod.Post, new JsonObject
        {
            ["tag"] = "producers",
            ["summary"] = "Cancel a running build (?by= names who did)",
            ["security"] = Producer(),
            ["responses"] = Refusals(new JsonObject
            {
                ["202"] = Response("The build is cancelled (build:cancelled published)", "BuildCancelled"),
                ["404"] = Error("BUILD_NOT_RUNNING"),
            }, body: false),
        });
        yield return ("/preview/{projectId}", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "previews",
            ["summary"] = "The preview of what a build's agents produced (HTML)",
            ["description"] = "A user token with access to the project (?token= or Authorization: Bearer) or the signed link of build:completed.",
            ["responses"] = new JsonObject
            {
                ["200"] = new JsonObject { ["description"] = "The preview page", ["content"] = new JsonObject { ["text/html"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } },
                ["400"] = Error("VALIDATION_FAILED: the project id is invalid"),
                ["401"] = Error("No valid token or link"),
                ["403"] = Error("FORBIDDEN"),
                ["404"] = Error("Nothing produced yet"),
            },
        });
        yield return ("/healthz", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "operations",
            ["summary"] = "Liveness",
            ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "ok", ["content"] = new JsonObject { ["text/plain"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } } },
        });
        yield return ("/readyz", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "operations",
            ["summary"] = "Readiness: the event store answers",
            ["responses"] = new JsonObject
            {
                ["200"] = new JsonObject { ["description"] = "ready", ["content"] = new JsonObject { ["text/plain"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } },
                ["503"] = Error("STORE_UNAVAILABLE"),
            },
        });
        yield return ("/metrics", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "operations",
            ["summary"] = "Metrics in the Prometheus text format (OpenTelemetry exporter)",
            ["description"] = "With Builder:Metrics:Port only on that port; with Builder:Metrics:Token only with Authorization: Bearer <token>.",
            ["responses"] = new JsonObject
            {
                ["200"] = new JsonObject { ["description"] = "The metrics", ["content"] = new JsonObject { ["text/plain"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } },
                ["401"] = Error("TOKEN_MISSING or TOKEN_INVALID (Builder:Metrics:Token)"),
                ["404"] = Error("NOT_FOUND: not the metrics port (Builder:Metrics:Port)"),
            },
        });
        yield return ("/asyncapi.json", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "contracts",
            ["summary"] = "The AsyncAPI 3.0 document of the Socket.IO namespace /builder",
            ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "docs/asyncapi.json", ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object" } } } } },
        });
        yield return ("/builder-events.d.ts", HttpMethod.Get, new JsonObject
        {
            ["tag"] = "contracts",
            ["summary"] = "TypeScript declarations of the events for socket.io-client",
            ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "docs/builder-events.d.ts", ["content"] = new JsonObject { ["application/typescript"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } } },
        });
    }
}
