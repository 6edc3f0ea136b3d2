using System.Text.Json.Serialization;

namespace EngineIO;

[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(EngineErrorBody))]
internal sealed partial class EngineJsonContext : JsonSerializerContext;
