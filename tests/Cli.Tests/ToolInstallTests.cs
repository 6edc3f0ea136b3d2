using System.Xml.Linq;

namespace Cli.Tests;

/// <summary>
/// The tool as the README installs it: <c>dotnet pack</c> of src/Builder.Cli into a folder,
/// <c>dotnet tool install --tool-path</c> from that folder alone (a nuget.config that lists only it:
/// nothing is fetched from the network), then the installed <c>builder</c> runs.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ToolInstallTests(GatewayFixture fixture) : IDisposable
{
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(5);
    private readonly string _work = Directory.CreateTempSubdirectory("builder-tool-").FullName;

    [Fact]
    public async Task Packed_tool_installs_with_dotnet_tool_install_and_runs_help_and_a_command_against_the_gateway()
    {
        var feed = Path.Combine(_work, "feed");
        var tools = Path.Combine(_work, "tools");
        var project = Path.Combine(CliProcess.RepoRoot, "src", "Builder.Cli", "Builder.Cli.csproj");

        // the tests' build built the tool: pack it as is
        var (packExit, packOut, packErr) = await CliProcess.RunAsync(["pack", project, "-c", CliProcess.Configuration, "--no-build", "-o", feed], timeout: Slow, program: "dotnet");
        Assert.True(packExit == 0, $"dotnet pack failed:\n{packOut}\n{packErr}");
        var package = Assert.Single(Directory.GetFiles(feed, "Builder.Cli.*.nupkg"));

        var config = Path.Combine(_work, "nuget.config");
        new XDocument(new XElement("configuration", new XElement("packageSources", new XElement("clear"), new XElement("add", new XAttribute("key", "packed"), new XAttribute("value", feed))))).Save(config);
        // a package folder of its own: never a Builder.Cli 1.0.0 cached by an earlier pack
        var packages = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(_work, "packages") };
        var (installExit, installOut, installErr) = await CliProcess.RunAsync(["tool", "install", "Builder.Cli", "--tool-path", tools, "--add-source", feed, "--configfile", config], packages, Slow, program: "dotnet");
        Assert.True(installExit == 0, $"dotnet tool install failed ({Path.GetFileName(package)}):\n{installOut}\n{installErr}");
        var builder = Path.Combine(tools, OperatingSystem.IsWindows() ? "builder.exe" : "builder");
        Assert.True(File.Exists(builder), $"{builder} was not installed:\n{installOut}");

        var (helpExit, help, helpErr) = await CliProcess.RunAsync(["--help"], program: builder);
        Assert.True(helpExit == 0, helpErr);
        foreach (var command in new[] { "token", "watch", "build", "publish", "decide", "replay" })
        {
            Assert.Contains(command, help, StringComparison.Ordinal);
        }

        // a real command against the started gateway: publish through the producer API, then replay it
        var projectId = "tool-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("tool-user", projectId));
        var (publishExit, published, publishErr) = await CliProcess.RunAsync(["publish", projectId, "build:progress", "{\"currentPhase\":\"analyze\",\"phaseProgress\":50,\"overallProgress\":10}"], env, program: builder);
        Assert.True(publishExit == 0, publishErr);
        Assert.StartsWith("published build:progress seq 1 (", published, StringComparison.Ordinal);
        var (replayExit, replayed, replayErr) = await CliProcess.RunAsync(["replay", projectId, "--from", "0", "--json"], env, program: builder);
        Assert.True(replayExit == 0, replayErr);
        var line = Assert.Single(replayed.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("\"overallProgress\":10", line, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
