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
