namespace Fuzz.Targets;

/// <summary>The inputs kept in the repository: fuzz/corpus/&lt;target&gt;/ and fuzz/regressions/&lt;target&gt;/.</summary>
public static class FuzzReplay
{
    /// <summary>The folders replayed, relative to fuzz/.</summary>
    public static IReadOnlyList<string> Folders { get; } = ["corpus", "regressions"];

    /// <summary>Every file of <paramref name="folder"/>/&lt;target&gt;/, for every target, sorted; (target, path).</summary>
    public static IEnumerable<(string Target, string Path)> Files(string folder)
    {
        foreach (var target in FuzzTargets.All)
        {
            var dir = Path.Combine(folder, target);
            if (!Directory.Exists(dir))
            {
                continue;
            }

            foreach (var file in Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal))
            {
                yield return (target, file);
            }
        }
    }

    /// <summary>
    /// The inputs of fuzz/regressions/known-failing.txt (open defects, reported but not fixed yet)
    /// by "&lt;target&gt;/&lt;file&gt;", with the full name of the exception each still throws.
    /// </summary>
    public static IReadOnlyDictionary<string, string> KnownFailing(string fuzzFolder)
    {
        var path = Path.Combine(fuzzFolder, "regressions", "known-failing.txt");
        var known = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return known;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2)
            {
                throw new FormatException($"{path}: expected '<target>/<file> <exception type>', got '{text}'");
            }

            known[parts[0]] = parts[1];
        }

        return known;
    }

    /// <summary>
    /// What tells one defect from another: the exception's type and the innermost frame of the
    /// project's own code (EngineIO, SocketIO, Builder, the targets) it came through.
    /// </summary>
    public static string Signature(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var frame = new System.Diagnostics.StackTrace(exception).GetFrames()
            .Select(f => f.GetMethod())
            .FirstOrDefault(m => m?.DeclaringType?.Namespace is { } ns
                && (ns.StartsWith("EngineIO", StringComparison.Ordinal) || ns.StartsWith("SocketIO", StringComparison.Ordinal)
                    || ns.StartsWith("Builder", StringComparison.Ordinal) || ns.StartsWith("Fuzz", StringComparison.Ordinal)));
        return $"{exception.GetType().FullName} at {frame?.DeclaringType?.FullName}.{frame?.Name}";
    }

    /// <summary>The repository's fuzz/ folder, found above <paramref name="start"/> (the folder holding Builder.slnx).</summary>
    public static string FindFuzzFolder(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
            {
                return Path.Combine(dir.FullName, "fuzz");
            }
        }

        throw new InvalidOperationException($"repository root (a directory containing Builder.slnx) not found above {start}");
    }
}
