using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Packaging.Tests;

/// <summary>The repository root: the first directory upwards that contains test.sh.</summary>
public static class Repo
{
    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "test.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"repository root (a directory containing test.sh) not found above {AppContext.BaseDirectory}");
    });

    public static string Root => LazyRoot.Value;

#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif
}

public sealed record ProcessResult(int ExitCode, string Output, bool TimedOut);

/// <summary>Child processes with a deadline (killed with their children past it).</summary>
public static class ChildProcess
{
    public static ProcessStartInfo Info(string fileName, IEnumerable<string> arguments, string workingDirectory)
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
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        return psi;
    }

    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, string workingDirectory, TimeSpan deadline, IDictionary<string, string>? environment = null)
    {
        var psi = Info(fileName, arguments, workingDirectory);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        using var running = Running.Start(psi);
        using var cts = new CancellationTokenSource(deadline);
        try
        {
            await running.Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            running.Kill();
            return new ProcessResult(-1, running.Output, true);
        }

        running.Process.WaitForExit(); // flushes the asynchronous readers
        return new ProcessResult(running.Process.ExitCode, running.Output, false);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A started process whose output is collected; disposing kills it.</summary>
public sealed class Running : IDisposable
{
    private readonly StringBuilder _output = new();

    private Running(Process process) => Process = process;

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static Running Start(ProcessStartInfo psi)
    {
        var running = new Running(new Process { StartInfo = psi });
        running.Process.OutputDataReceived += (_, e) => running.Append(e.Data);
        running.Process.ErrorDataReceived += (_, e) => running.Append(e.Data);
        running.Process.Start();
        running.Process.StandardInput.Close();
        running.Process.BeginOutputReadLine();
        running.Process.BeginErrorReadLine();
        return running;
    }

    public void Kill()
    {
        try
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // exited already
        }
    }

    public void Dispose()
    {
        Kill();
        Process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
