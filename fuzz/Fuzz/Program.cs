using Fuzz.Targets;
using SharpFuzz;

// Fuzz <target>                 one target under afl-fuzz (SharpFuzz's fork server; run once on stdin without AFL)
// Fuzz --replay <dir>...        every file of <dir>/<target>/ through its target, in process, without AFL
// Fuzz <target> <file>...       these files through one target (a crash AFL found, with its exception)
if (args.Length >= 2)
{
    var inputs = args[0] == "--replay"
        ? args.Skip(1).SelectMany(FuzzReplay.Files)
        : FuzzTargets.All.Contains(args[0]) ? args.Skip(1).Select(path => (Target: args[0], Path: path)) : null;
    if (inputs is null)
    {
        return Usage();
    }

    var failures = 0;
    var count = 0;
    {
        foreach (var (target, path) in inputs)
        {
            count++;
            try
            {
                FuzzTargets.Run(target, File.ReadAllBytes(path));
            }
#pragma warning disable CA1031 // every failure is reported, then the run fails
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failures++;
                Console.Error.WriteLine($"FAIL {target} {path}: {ex}");
            }
        }
    }

    Console.WriteLine($"replayed {count} inputs: {count - failures} passed, {failures} failed");
    return failures == 0 ? 0 : 1;
}

if (args.Length != 1 || !FuzzTargets.All.Contains(args[0]))
{
    return Usage();
}

var name = args[0];
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzTargets.Run(name, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;

static int Usage()
{
    Console.Error.WriteLine($"usage: Fuzz <{string.Join("|", FuzzTargets.All)}> [<file>...] | Fuzz --replay <dir>...");
    return 2;
}
