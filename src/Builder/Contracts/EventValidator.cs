using System.Text.Json;

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

        var p = new Checker(payload, "payload", errors);
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
                if (p.Array("actions", required: false) is { } actions)
                {
                    var i = 0;
                    foreach (var action in actions.EnumerateArray())
                    {
                        var a = new Checker(action, $"payload.actions[{i++}]", errors);
                        if (action.ValueKind != JsonValueKind.Object)
                        {
                            errors.Add(new FieldError(a.Path, "must be an object"));
                            continue;
                        }

                        a.String("label");
                        a.String("action");
                    }
                }

                break;
            default:
                errors.Add(new FieldError("type", $"unknown event type \"{type}\"; expected one of {string.Join(", ", EventTypes.Publishable)}"));
                break;
        }

        return errors;
    }

    /// <summary>Field checks on one JSON object, errors named by their path.</summary>
    internal readonly struct Checker(JsonElement obj, string path, List<FieldError> errors)
    {
        public string Path => path;

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
            if (TryGet(name, required, out var v) && (v.ValueKind != JsonValueKind.String || !TryGetText(v, out var text) || (required && text.Length == 0)))
            {
                errors.Add(new FieldError($"{path}.{name}", "must be a non-empty string of valid Unicode text"));
            }
        }

        public void OneOf(string name, string[] allowed)
        {
            if (TryGet(name, true, out var v) && (v.ValueKind != JsonValueKind.String || !TryGetText(v, out var text) || System.Array.IndexOf(allowed, text) < 0))
            {
                errors.Add(new FieldError($"{path}.{name}", $"must be one of {string.Join("|", allowed)}"));
            }
        }

        public void Percent(string name, bool required = true) => Number(name, 0, 100, required: required);

        public void Number(string name, double min = double.MinValue, double max = double.MaxValue, bool integer = false, bool required = true)
        {
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
            if (TryGet(name, required, out var v) && v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                errors.Add(new FieldError($"{path}.{name}", "must be a boolean"));
            }
        }

        public void Any(string name, bool required = true) => TryGet(name, required, out _);

        public Checker? Object(string name, bool required = true)
        {
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

        public void StringArray(string name, bool nonEmpty, bool required = true)
        {
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
