using System.Text.Json;
using System.Text.Json.Nodes;

namespace Builder.Contracts;

/// <summary>
/// Checks event payloads against the protocol document: required fields present and of the
/// right type, enumerations (agentType, status, stage) and ranges (progress 0–100).
/// </summary>
public static class EventValidator
{
    /// <summary>
    /// A JSON string's text, or false when it cannot be read as text: invalid UTF-8, or an escaped
    /// lone surrogate such as <c>"\ud800"</c> (valid JSON that .NET cannot turn into a string).
    /// Found by fuzzing: <see cref="JsonElement.GetString"/> throws on both.
    /// </summary>
    public static bool TryGetText(JsonElement element, out string text)
    {
        try
        {
            text = element.GetString() ?? string.Empty;
            return true;
        }
        catch (InvalidOperationException)
        {
            text = string.Empty;
            return false;
        }
    }

    public static IReadOnlyList<FieldError> Validate(string type, JsonElement payload)
    {
        var errors = new List<FieldError>();
        if (payload.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new FieldError("payload", "must be an object"));
            return errors;
        }

        Describe(type, new Checker(payload, "payload", errors), errors);
        return errors;
    }

    /// <summary>
    /// The JSON Schema of <paramref name="type"/>'s payload, recorded from the very checks
    /// <see cref="Validate"/> runs (so the published contracts cannot drift from what is enforced);
    /// null for a type the validator does not know.
    /// </summary>
    public static JsonObject? PayloadSchema(string type)
    {
        var schema = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
        var errors = new List<FieldError>();
        Describe(type, new Checker(schema), errors);
        return errors.Count == 0 ? schema : null;
    }

    /// <summary>The checks of each event type's payload (run on a payload, or recorded as a schema).</summary>
    private static void Describe(string type, Checker p, List<FieldError> errors)
    {
        switch (type)
        {
            case EventTypes.AgentStatusUpdate:
                p.String("agentId");
                p.OneOf("agentType", EventTypes.AgentTypes);
                p.OneOf("status", EventTypes.AgentStatuses);
                p.String("currentTask", required: false);
                p.Percent("progress", required: false);
                p.String("message", required: false);
                break;
            case EventTypes.AgentOutput:
                p.String("agentId");
                p.OneOf("agentType", EventTypes.AgentTypes);
                p.Object("output");
                p.String("summary");
                break;
            case EventTypes.AgentError:
                p.String("agentId");
                p.OneOf("agentType", EventTypes.AgentTypes);
                if (p.Object("error") is { } error)
                {
                    error.String("code");
                    error.String("message");
                    error.Any("details", required: false);
                    error.Bool("retryable");
                    error.Number("retryCount", min: 0, integer: true, required: false);
                }

                break;
            case EventTypes.BuildStarted:
                p.String("projectId", required: false);
                p.Number("estimatedDuration", min: 0);
                p.StringArray("phases", nonEmpty: true);
                break;
            case EventTypes.BuildProgress:
                p.String("projectId", required: false);
                p.String("currentPhase");
                p.Percent("phaseProgress");
                p.Percent("overallProgress");
                p.String("message", required: false);
                p.Number("estimatedTimeRemaining", min: 0, required: false);
                break;
            case EventTypes.BuildCompleted:
                p.String("projectId", required: false);
                p.Number("duration", min: 0);
                p.String("previewUrl");
                if (p.Object("stats") is { } stats)
                {
                    stats.Number("componentsGenerated", min: 0, integer: true);
                    stats.Number("apiEndpointsCreated", min: 0, integer: true);
                    stats.Number("dataModelsCreated", min: 0, integer: true);
                }

                break;
            case EventTypes.BuildFailed:
            case EventTypes.DeploymentFailed:
                p.String("projectId", required: false);
                if (type == EventTypes.DeploymentFailed)
                {
                    p.String("deploymentId");
                }

                if (p.Object("error") is { } failure)
                {
                    failure.String("phase", required: type == EventTypes.BuildFailed);
                    failure.String("message");
                    failure.Any("details", required: false);
                    failure.StringArray("suggestions", nonEmpty: false, required: false);
                }

                break;
            case EventTypes.BuildCancelled:
                p.String("projectId", required: false);
                p.String("buildId");
                p.String("cancelledBy");
                break;
            case EventTypes.DeploymentProgress:
                p.String("deploymentId");
                p.String("environment");
                p.OneOf("stage", EventTypes.DeploymentStages);
                p.Percent("progress");
                p.String("message", required: false);
                break;
            case EventTypes.DeploymentSuccess:
                p.String("deploymentId");
                p.String("environment");
                p.String("url");
                p.String("healthStatus");
                p.Number("duration", min: 0);
                break;
            case EventTypes.Error:
                p.String("code");
                p.String("message");
                p.Any("details", required: false);
                p.Bool("recoverable");
                p.ObjectArray("actions", static a =>
                {
                    a.String("label");
                    a.String("action");
                }, required: false);
                break;
            default:
                errors.Add(new FieldError("type", $"unknown event type \"{type}\"; expected one of {string.Join(", ", EventTypes.Publishable)}"));
                break;
        }
    }

    /// <summary>
    /// Field checks on one JSON object, errors named by their path; or, made with a schema object,
    /// the same calls recorded as JSON Schema (see <see cref="PayloadSchema"/>).
    /// </summary>
    internal readonly struct Checker
    {
        private readonly JsonElement obj;
        private readonly string path;
        private readonly List<FieldError> errors;
        private readonly JsonObject? schema;

        public Checker(JsonElement obj, string path, List<FieldError> errors)
        {
            this.obj = obj;
            this.path = path;
            this.errors = errors;
            schema = null;
        }

        /// <summary>A recording checker: each check adds its field to <paramref name="schema"/>.</summary>
        public Checker(JsonObject schema)
        {
            obj = default;
            path = "payload";
            errors = [];
            this.schema = schema;
        }

        public string Path => path;

        /// <summary>Records a field (recording mode): its schema, optional ones also accepting null as the checks do.</summary>
        private JsonObject Record(string name, bool required, JsonObject field)
        {
            if (!required && field["type"] is JsonValue t)
            {
                field["type"] = new JsonArray(t.GetValue<string>(), "null");
            }

            schema!["properties"]!.AsObject()[name] = field;
            if (required)
            {
                if (schema["required"] is not JsonArray list)
                {
                    list = [];
                    schema["required"] = list;
                }

                list.Add(name);
            }

            return field;
        }

        private static JsonObject ObjectSchema() => new() { ["type"] = "object", ["properties"] = new JsonObject() };

        private bool TryGet(string name, bool required, out JsonElement value)
        {
            if (obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
            {
                return true;
            }

            if (required)
            {
                errors.Add(new FieldError($"{path}.{name}", "is required"));
            }

            return false;
        }

        public void String(string name, bool required = true)
        {
            if (schema is not null)
            {
                // a required string must not be empty; an optional one may be
                Record(name, required, required ? new() { ["type"] = "string", ["minLength"] = 1 } : new() { ["type"] = "string" });
                return;
            }

            if (TryGet(name, required, out var v) && (v.ValueKind != JsonValueKind.String || !TryGetText(v, out var text) || (required && text.Length == 0)))
            {
                errors.Add(new FieldError($"{path}.{name}", "must be a non-empty string of valid Unicode text"));
            }
        }

        public void OneOf(string name, string[] allowed)
        {
            if (schema is not null)
            {
                Record(name, true, new() { ["type"] = "string", ["enum"] = new JsonArray([.. allowed.Select(a => (JsonNode?)a)]) });
                return;
            }

            if (TryGet(name, true, out var v) && (v.ValueKind != JsonValueKind.String || !TryGetText(v, out var text) || System.Array.IndexOf(allowed, text) < 0))
            {
                errors.Add(new FieldError($"{path}.{name}", $"must be one of {string.Join("|", allowed)}"));
            }
        }

        public void Percent(string name, bool required = true) => Number(name, 0, 100, required: required);

        public void Number(string name, double min = double.MinValue, double max = double.MaxValue, bool integer = false, bool required = true)
        {
            if (schema is not null)
            {
                var field = new JsonObject { ["type"] = integer ? "integer" : "number" };
                if (min != double.MinValue)
                {
                    field["minimum"] = min;
                }

                if (max != double.MaxValue)
                {
                    field["maximum"] = max;
                }

                Record(name, required, field);
                return;
            }

            if (!TryGet(name, required, out var v))
            {
                return;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d))
            {
                errors.Add(new FieldError($"{path}.{name}", "must be a number"));
            }
            else if (d < min || d > max)
            {
                errors.Add(new FieldError($"{path}.{name}", max == double.MaxValue ? $"must be at least {min}" : $"must be between {min} and {max}"));
            }
            else if (integer && Math.Floor(d) != d)
            {
                errors.Add(new FieldError($"{path}.{name}", "must be an integer"));
            }
        }

        public void Bool(string name, bool required = true)
        {
            if (schema is not null)
            {
                Record(name, required, new() { ["type"] = "boolean" });
                return;
            }

            if (TryGet(name, required, out var v) && v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                errors.Add(new FieldError($"{path}.{name}", "must be a boolean"));
            }
        }

        public void Any(string name, bool required = true)
        {
            if (schema is not null)
            {
                Record(name, required, []);
                return;
            }

            TryGet(name, required, out _);
        }

        public Checker? Object(string name, bool required = true)
        {
            if (schema is not null)
            {
                return new Checker(Record(name, required, ObjectSchema()));
            }

            if (!TryGet(name, required, out var v))
            {
                return null;
            }

            if (v.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new FieldError($"{path}.{name}", "must be an object"));
                return null;
            }

            return new Checker(v, $"{path}.{name}", errors);
        }

        public JsonElement? Array(string name, bool required = true)
        {
            if (schema is not null)
            {
                Record(name, required, new() { ["type"] = "array" });
                return null;
            }

            if (!TryGet(name, required, out var v))
            {
                return null;
            }

            if (v.ValueKind != JsonValueKind.Array)
            {
                errors.Add(new FieldError($"{path}.{name}", "must be an array"));
                return null;
            }

            return v;
        }

        /// <summary>An array of objects, each checked by <paramref name="item"/>.</summary>
        public void ObjectArray(string name, Action<Checker> item, bool required = true)
        {
            if (schema is not null)
            {
                var items = ObjectSchema();
                Record(name, required, new() { ["type"] = "array", ["items"] = items });
                item(new Checker(items));
                return;
            }

            if (Array(name, required) is not { } array)
            {
                return;
            }

            var i = 0;
            foreach (var element in array.EnumerateArray())
            {
                var checker = new Checker(element, $"{path}.{name}[{i++}]", errors);
                if (element.ValueKind != JsonValueKind.Object)
                {
                    errors.Add(new FieldError(checker.Path, "must be an object"));
                    continue;
                }

                item(checker);
            }
        }

        public void StringArray(string name, bool nonEmpty, bool required = true)
        {
            if (schema is not null)
            {
                var field = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } };
                if (nonEmpty)
                {
                    field["minItems"] = 1;
                }

                Record(name, required, field);
                return;
            }

            if (Array(name, required) is not { } array)
            {
                return;
            }

            if (nonEmpty && array.GetArrayLength() == 0)
            {
                errors.Add(new FieldError($"{path}.{name}", "must not be empty"));
            }

            var i = 0;
            foreach (var item in array.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                {
                    errors.Add(new FieldError($"{path}.{name}[{i}]", "must be a string"));
                }

                i++;
            }
        }
    }
}
