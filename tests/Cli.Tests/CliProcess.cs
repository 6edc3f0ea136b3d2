using System.Diagnostics;
using System.Text;
using Abuse.Tests;

namespace Cli.Tests;

/// <summary>
/// The tool as its users run it: <c>dotnet Builder.Cli.dll ...</c> in its own process, stdout and
/// stderr redirected (a non-interactive console), its exit code read.
/// </summary>
public sealed class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly StringBuilder _stderr = new();

    private CliProcess(Process process)
    {
        _process = process;
    }

    /// <summary>The lines written to stdout so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_stdout)
            {
                return [.. _stdout];
            }
        }
    }

    public string Stdout => string.Join('\n', Lines);

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    /// <param name="program">The executable to run instead of <c>dotnet Builder.Cli.dll</c> (the installed tool's <c>builder</c>).</param>
    public static CliProcess Start(IEnumerable<string> args, IDictionary<string, string>? env = null, string? program = null)
    {
        var info = new ProcessStartInfo(program ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (program is null)
        {
            info.ArgumentList.Add(CliDll());
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        // nothing of the developer's environment leaks in
        foreach (var name in new[] { "BUILDER_URL", "BUILDER_TOKEN", "BUILDER_API_KEY", "BUILDER_JWT_SECRET" })
        {
            info.Environment.Remove(name);
        }

        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (cli._stdout)
                {
                    cli._stdout.Add(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (cli._stderr)
                {
                    cli._stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Runs the tool to its end (within <paramref name="timeout"/>) and returns its exit code.</summary>
    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(IEnumerable<string> args, IDictionary<string, string>? env = null, TimeSpan? timeout = null, string? program = null)
    {
        await using var cli = Start(args, env, program);
        var exit = await cli.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
        return (exit, cli.Stdout, cli.Stderr);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the tool did not exit within {timeout.TotalSeconds:0} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        // the asynchronous readers have seen the end of both streams once WaitForExit returns
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Awaits a stdout line matching <paramref name="match"/>; returns it.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        string? found = null;
        try
        {
            await Deadline.UntilAsync(() =>
            {
                found = Lines.FirstOrDefault(match);
                return found is not null || _process.HasExited;
            }, timeout, what);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        return found ?? throw new InvalidOperationException($"the tool exited ({_process.ExitCode}) before {what}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
    }

    /// <summary>The configuration the tests were built in (tests/Cli.Tests/bin/&lt;Configuration&gt;/net10.0/).</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    /// <summary>The repository root (the folder of Builder.slnx) above the tests' folder.</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("the repository root (Builder.slnx) was not found above " + AppContext.BaseDirectory);
        }
    }

    private static string CliDll()
    {
        var dll = Path.Combine(RepoRoot, "src", "Builder.Cli", "bin", Configuration, "net10.0", "Builder.Cli.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build the solution first");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
