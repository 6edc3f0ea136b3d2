using Fuzz.Targets;
using SharpFuzz;

// Fuzz <target>                          one target under afl-fuzz (SharpFuzz's fork server)
// Fuzz --replay <dir>...                 every file of <dir>/<target>/ through its target, in process, without AFL
// Fuzz --triage <target> <fuzz> <file>...  crashes AFL found, replayed: those that fail like an input of
//                                        <fuzz>/regressions/known-failing.txt (same exception, same frame)
//                                        are known defects; the exit code is 1 when any other remains
if (args.Length >= 2 && args[0] == "--replay")
{
    var failures = 0;
    var count = 0;
    foreach (var (target, path) in args.Skip(1).SelectMany(FuzzReplay.Files))
    {
        count++;
        if (Fails(target, path) is { } ex)
        {
            failures++;
            Console.Error.WriteLine($"FAIL {target} {path}: {ex}");
        }
    }

    Console.WriteLine($"replayed {count} inputs: {count - failures} passed, {failures} failed");
    return failures == 0 ? 0 : 1;
}

if (args.Length >= 3 && args[0] == "--triage" && FuzzTargets.All.Contains(args[1]))
{
    var target = args[1];
    var fuzz = args[2];
    var known = new HashSet<string>(StringComparer.Ordinal);
    foreach (var (name, _) in FuzzReplay.KnownFailing(fuzz).Where(k => k.Key.StartsWith(target + "/", StringComparison.Ordinal)))
    {
        if (Fails(target, Path.Combine(fuzz, "regressions", name)) is { } ex)
        {
            known.Add(FuzzReplay.Signature(ex));
        }
    }

    var fresh = 0;
    foreach (var path in args.Skip(3))
    {
        var ex = Fails(target, path);
        if (ex is null)
        {
            fresh++;
            Console.WriteLine($"NOT REPRODUCED in process (a timeout or a crash of the runtime under AFL?): {path}");
        }
        else if (known.Contains(FuzzReplay.Signature(ex)))
        {
            Console.WriteLine($"known defect ({FuzzReplay.Signature(ex)}): {path}");
        }
        else
        {
            fresh++;
            Console.WriteLine($"NEW CRASH {path}: {ex}");
        }
    }

    return fresh == 0 ? 0 : 1;
}

if (args.Length != 1 || !FuzzTargets.All.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Fuzz <{string.Join("|", FuzzTargets.All)}> | Fuzz --replay <dir>... | Fuzz --triage <target> <fuzz folder> <file>...");
    return 2;
}

var selected = args[0];
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzTargets.Run(selected, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;

static Exception? Fails(string target, string path)
{
    try
    {
        FuzzTargets.Run(target, File.ReadAllBytes(path));
        return null;
    }
#pragma warning disable CA1031 // every failure is reported
    catch (Exception ex)
#pragma warning restore CA1031
    {
        return ex;
    }
}
