using System.Globalization;
using System.Text.RegularExpressions;

namespace Builder.Runner.Simulation;

public sealed record FieldSpec(string Name, string Type, bool Required = true, bool Unique = false, string? References = null);

public sealed record RelationshipSpec(string Kind, string Target, string Via);

public sealed record EntitySpec(string Name, string Table, IReadOnlyList<FieldSpec> Fields, IReadOnlyList<RelationshipSpec> Relationships);

/// <summary>
/// What the simulated agents read from the requirements text: the data entities it names
/// ("An online shop with users, products and orders" → User, Product, Order), deterministically.
/// </summary>
public sealed partial class RequirementsModel
{
    private static readonly Dictionary<string, FieldSpec[]> s_knownFields = new(StringComparer.Ordinal)
    {
        ["User"] = [new("email", "string", Unique: true), new("name", "string"), new("passwordHash", "string")],
        ["Customer"] = [new("email", "string", Unique: true), new("name", "string"), new("phone", "string", Required: false)],
        ["Product"] = [new("name", "string"), new("description", "text", Required: false), new("price", "decimal"), new("stock", "integer")],
        ["Order"] = [new("status", "string"), new("total", "decimal"), new("placedAt", "timestamp")],
        ["Post"] = [new("title", "string"), new("body", "text"), new("publishedAt", "timestamp", Required: false)],
        ["Comment"] = [new("body", "text")],
        ["Task"] = [new("title", "string"), new("done", "boolean"), new("dueDate", "date", Required: false)],
        ["Project"] = [new("name", "string"), new("description", "text", Required: false)],
        ["Invoice"] = [new("number", "string", Unique: true), new("amount", "decimal"), new("dueDate", "date")],
        ["Booking"] = [new("startsAt", "timestamp"), new("endsAt", "timestamp"), new("status", "string")],
        ["Review"] = [new("rating", "integer"), new("body", "text", Required: false)],
        ["Category"] = [new("name", "string", Unique: true)],
    };

    // entities that belong to a user when the app has users
    private static readonly HashSet<string> s_ownedByUser = ["Order", "Post", "Comment", "Task", "Invoice", "Booking", "Review", "Project"];

    public RequirementsModel(string requirements)
    {
        Requirements = requirements ?? string.Empty;
        var names = ExtractEntityNames(Requirements);
        Entities = BuildEntities(names);
        AppName = DeriveAppName(Requirements);
    }

    public string Requirements { get; }

    public string AppName { get; }

    public IReadOnlyList<EntitySpec> Entities { get; }

    public bool Has(string entity) => Entities.Any(e => e.Name == entity);

    public static string Plural(string name)
    {
        var lower = name.ToLowerInvariant();
        return lower.EndsWith('y') && !lower.EndsWith("ey", StringComparison.Ordinal) ? lower[..^1] + "ies"
            : lower.EndsWith('s') || lower.EndsWith("sh", StringComparison.Ordinal) || lower.EndsWith("ch", StringComparison.Ordinal) ? lower + "es"
            : lower + "s";
    }

    private static List<string> ExtractEntityNames(string text)
    {
        var names = new List<string>();
        var match = WithList().Match(text);
        var list = match.Success ? match.Groups["list"].Value : string.Empty;
        foreach (var raw in AndSplit().Split(list))
        {
            var words = raw.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
            {
                continue;
            }

            var noun = new string(words[^1].Where(char.IsLetter).ToArray());
            if (noun.Length < 2)
            {
                continue;
            }

            var name = Singular(noun);
            name = char.ToUpper(name[0], CultureInfo.InvariantCulture) + name[1..].ToLowerInvariant();
            if (!names.Contains(name))
            {
                names.Add(name);
            }
        }

        if (names.Count == 0)
        {
            names.Add("Item");
        }

        return names;
    }

    private static string Singular(string word)
    {
        var w = word.ToLowerInvariant();
        return w.EndsWith("ies", StringComparison.Ordinal) ? w[..^3] + "y"
            : w.EndsWith("sses", StringComparison.Ordinal) || w.EndsWith("shes", StringComparison.Ordinal) || w.EndsWith("ches", StringComparison.Ordinal) ? w[..^2]
            : w.EndsWith('s') && !w.EndsWith("ss", StringComparison.Ordinal) ? w[..^1]
            : w;
    }

    private static List<EntitySpec> BuildEntities(List<string> names)
    {
        var hasUser = names.Contains("User");
        var entities = new List<EntitySpec>();
        foreach (var name in names)
        {
            var fields = new List<FieldSpec> { new("id", "uuid") };
            fields.AddRange(s_knownFields.TryGetValue(name, out var known) ? known : [new FieldSpec("name", "string"), new FieldSpec("description", "text", Required: false)]);
            var relationships = new List<RelationshipSpec>();
            if (hasUser && name != "User" && s_ownedByUser.Contains(name))
            {
                fields.Add(new FieldSpec("userId", "uuid", References: "User"));
                relationships.Add(new RelationshipSpec("many-to-one", "User", "userId"));
            }

            if (name == "Order" && names.Contains("Product"))
            {
                relationships.Add(new RelationshipSpec("many-to-many", "Product", "order_items"));
            }

            if (name == "Review" && names.Contains("Product"))
            {
                fields.Add(new FieldSpec("productId", "uuid", References: "Product"));
                relationships.Add(new RelationshipSpec("many-to-one", "Product", "productId"));
            }

            fields.Add(new FieldSpec("createdAt", "timestamp"));
            entities.Add(new EntitySpec(name, Plural(name), fields, relationships));
        }

        // the inverse side, so each entity lists what points at it
        foreach (var entity in entities.ToList())
        {
            foreach (var rel in entity.Relationships.Where(r => r.Kind == "many-to-one"))
            {
                var target = entities.FindIndex(e => e.Name == rel.Target);
                var t = entities[target];
                entities[target] = t with { Relationships = [.. t.Relationships, new RelationshipSpec("one-to-many", entity.Name, rel.Via)] };
            }
        }

        return entities;
    }

    private static string DeriveAppName(string text)
    {
        var match = AppNoun().Match(text);
        var noun = match.Success ? match.Groups["noun"].Value : "app";
        return char.ToUpper(noun[0], CultureInfo.InvariantCulture) + noun[1..].ToLowerInvariant();
    }

    /// <summary>SQL type of a field.</summary>
    public static string SqlType(string type) => type switch
    {
        "uuid" => "UUID",
        "string" => "VARCHAR(255)",
        "text" => "TEXT",
        "decimal" => "NUMERIC(12,2)",
        "integer" => "INTEGER",
        "boolean" => "BOOLEAN",
        "date" => "DATE",
        "timestamp" => "TIMESTAMP",
        _ => "TEXT",
    };

    public static string Column(string field) => SnakeCase().Replace(field, "$1_$2").ToLowerInvariant();

    [GeneratedRegex(@"\bwith\s+(?<list>[^.;!?]+)", RegexOptions.IgnoreCase)]
    private static partial Regex WithList();

    [GeneratedRegex(@"\s*(?:,|\band\b|&)\s*", RegexOptions.IgnoreCase)]
    private static partial Regex AndSplit();

    [GeneratedRegex(@"(?<noun>[A-Za-z]+)\s+with\b", RegexOptions.IgnoreCase)]
    private static partial Regex AppNoun();

    [GeneratedRegex("([a-z0-9])([A-Z])")]
    private static partial Regex SnakeCase();
}
