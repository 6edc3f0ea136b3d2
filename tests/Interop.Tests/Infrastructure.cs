using System.Diagnostics;
using System.Text;
using InteropHost;
using Microsoft.Extensions.DependencyInjection;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Interop.Tests;

/// <summary>
/// One in-process <see cref="InteropServer"/> per test class. Setting INTEROP_SERVER_URL runs the
/// scenarios against an external server instead (e.g. the reference Node.js server, to check
/// the harness itself).
/// </summary>
public sealed class InteropServerFixture : IAsyncLifetime
{
    private InteropServer? _server;
    private Uri? _external;

    public Uri Url => _external ?? _server?.Url ?? throw new InvalidOperationException("server not started");

    /// <summary>Sessions opened by the connection-level WebSocket handshake (null for an external server).</summary>
    public int? FastPathSessions =>
        _server is null ? null : Volatile.Read(ref _server.Services.GetRequiredService<SocketIO.SocketIOServer>().Engine.FastPathSessions);

    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable("INTEROP_SERVER_URL");
        if (!string.IsNullOrEmpty(external))
        {
            _external = new Uri(external);
            return;
        }

        _server = await InteropServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

public static class Repo
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The repository root: the first directory upwards that contains test.sh.</summary>
    public static string Root => LazyRoot.Value;

    public static string InteropDir => Path.Combine(Root, "tests", "Interop");

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "test.sh")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException($"repository root (a directory containing test.sh) not found above {AppContext.BaseDirectory}");
    }
}

public sealed record ProcessResult(int ExitCode, string Output, bool TimedOut);

public static class ChildProcess
{
    /// <summary>Runs a process to completion or kills it (with its children) at the deadline.</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, string workingDirectory, TimeSpan deadline)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["PYTHONUNBUFFERED"] = "1";

        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return new ProcessResult(-1, $"could not start {fileName}: {ex.Message}", false);
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var cts = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited in the meantime
            }

            await process.WaitForExitAsync(CancellationToken.None);
            return new ProcessResult(process.ExitCode, Snapshot(output), true);
        }

        // flush the asynchronous readers
        process.WaitForExit();
        return new ProcessResult(process.ExitCode, Snapshot(output), false);
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Snapshot(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}

/// <summary>Assertions for external client scripts.</summary>
public static class ScriptAssert
{
    public static void Passed(ProcessResult result, string command, TimeSpan deadline)
    {
        if (result.TimedOut)
        {
            Assert.Fail($"{command}\nkilled after the {deadline.TotalSeconds:0} s deadline. Output:\n{result.Output}");
        }

        if (result.ExitCode != 0)
        {
            Assert.Fail($"{command}\nexited with {result.ExitCode}. Output:\n{result.Output}");
        }
    }
}
