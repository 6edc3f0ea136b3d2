using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Builder.Tests.Infrastructure;

/// <summary>
/// A Node.js script of tests/Builder.Tests/node that reports its steps as JSON lines on stdout;
/// socket.io-client is resolved from tests/Interop/node_modules (see its package.json).
/// </summary>
public sealed class NodeScript : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<JsonElement> _steps = Channel.CreateUnbounded<JsonElement>();
    private readonly StringBuilder _output = new();

    private NodeScript(Process process)
    {
        _process = process;
    }

    public static string RepoRoot { get; } = FindRoot();

    public static string InteropDir => Path.Combine(RepoRoot, "tests", "Interop");

    /// <summary>Whether socket.io-client is installed (npm ci in tests/Interop).</summary>
    public static bool ClientInstalled => File.Exists(Path.Combine(InteropDir, "node_modules", "socket.io-client", "package.json"));

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

    public static NodeScript Start(string script, params string[] arguments)
    {
        var psi = new ProcessStartInfo("node")
        {
            WorkingDirectory = Path.Combine(RepoRoot, "tests", "Builder.Tests", "node"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(RepoRoot, "tests", "Builder.Tests", "node", script));
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["INTEROP_DIR"] = InteropDir;
        psi.Environment["NO_COLOR"] = "1";
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var node = new NodeScript(process);
        process.OutputDataReceived += (_, e) => node.OnLine(e.Data, stdout: true);
        process.ErrorDataReceived += (_, e) => node.OnLine(e.Data, stdout: false);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    private void OnLine(string? line, bool stdout)
    {
        if (line is null)
        {
            // the end of stdout, not the process's exit, ends the steps: Exited can be raised
            // before the reader has handed over the last lines (a "done" step was lost so)
            if (stdout)
            {
                _steps.Writer.TryComplete();
            }

            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (stdout && line.StartsWith('{'))
        {
            try
            {
                _steps.Writer.TryWrite(JsonDocument.Parse(line).RootElement.Clone());
            }
            catch (JsonException)
            {
                // not a step line
            }
        }
    }

    /// <summary>Waits for the script's next step, which must be <paramref name="step"/>.</summary>
    public async Task<JsonElement> StepAsync(string step, TimeSpan deadline)
    {
        JsonElement next;
        try
        {
            next = await _steps.Reader.ReadAsync().AsTask().WaitAsync(deadline);
        }
        catch (Exception ex) when (ex is TimeoutException or ChannelClosedException)
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync();
            }

            throw new InvalidOperationException($"node script: no \"{step}\" step ({(ex is TimeoutException ? "timed out" : "exited " + _process.ExitCode)}). Output:\n{Output}", ex);
        }

        Assert.True(next.GetProperty("step").GetString() == step, $"expected step \"{step}\", got {next.GetRawText()}. Output:\n{Output}");
        return next;
    }

    public async Task<int> ExitAsync(TimeSpan deadline)
    {
        using var cts = new CancellationTokenSource(deadline);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited in the meantime
            }

            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException($"repository root (a directory containing Builder.slnx) not found above {AppContext.BaseDirectory}");
    }
}
