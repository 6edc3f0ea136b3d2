using Fuzz.Targets;

namespace SocketIO.Tests.Fuzz;

/// <summary>
/// Every input kept in the repository for the fuzz targets (the seed corpora in fuzz/corpus/ and
/// the crashes found, in fuzz/regressions/) through the same target code AFL runs (see
/// docs/fuzzing.md), in process: each must be handled as designed (no exception other than the
/// parser's own for bad input). The inputs of fuzz/regressions/known-failing.txt are open defects:
/// each must still throw the exception recorded for it, so that its fix shows here.
/// </summary>
public sealed class FuzzCorpusReplayTests
{
    private static readonly string s_fuzz = FuzzReplay.FindFuzzFolder(AppContext.BaseDirectory);

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in FuzzReplay.Folders)
        {
            foreach (var (target, path) in FuzzReplay.Files(Path.Combine(s_fuzz, folder)))
            {
                data.Add(target, Path.GetRelativePath(s_fuzz, path).Replace('\\', '/'));
            }
        }

        return data;
    }

    [Fact]
    public void EveryTarget_HasASeedCorpus()
    {
        foreach (var target in FuzzTargets.All)
        {
            Assert.True(Directory.EnumerateFiles(Path.Combine(s_fuzz, "corpus", target)).Any(), $"fuzz/corpus/{target}/ is empty");
        }
    }

    [Fact]
    public void KnownFailingInputs_Exist()
    {
        foreach (var name in FuzzReplay.KnownFailing(s_fuzz).Keys)
        {
            Assert.True(File.Exists(Path.Combine(s_fuzz, "regressions", name)), $"fuzz/regressions/known-failing.txt names {name}, which is not in fuzz/regressions/");
        }
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Input_IsHandledAsDesigned(string target, string file)
    {
        var input = File.ReadAllBytes(Path.Combine(s_fuzz, file));
        var name = file.StartsWith("regressions/", StringComparison.Ordinal) ? file["regressions/".Length..] : null;
        if (name is not null && FuzzReplay.KnownFailing(s_fuzz).TryGetValue(name, out var expected))
        {
            var ex = Record.Exception(() => FuzzTargets.Run(target, input));
            Assert.True(ex is not null, $"{file} no longer fails: its defect is fixed; delete its line from fuzz/regressions/known-failing.txt");
            Assert.Equal(expected, ex.GetType().FullName);
            return;
        }

        FuzzTargets.Run(target, input);
    }
}
