using System.IO.Compression;
using System.Net;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Packaging.Tests;

/// <summary>The three library packages, packed once (no build: the test project's build built them) into a temporary folder feed.</summary>
public sealed class PackedFeed : IAsyncLifetime
{
    public static readonly string[] Packages = ["EngineIO", "SocketIO", "SocketIO.Redis"];

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "sio-feed-" + Guid.NewGuid().ToString("N")[..8]);

    public string Version { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        foreach (var package in Packages)
        {
            var project = Path.Combine(Repo.Root, "src", package, package + ".csproj");
            var result = await ChildProcess.RunAsync("dotnet", ["pack", project, "-c", Repo.Configuration, "--no-build", "-o", Dir], Repo.Root, TimeSpan.FromMinutes(5));
            Assert.True(result.ExitCode == 0 && !result.TimedOut, $"dotnet pack {package} failed:\n{result.Output}");
        }

        var socketIO = Directory.GetFiles(Dir, "SocketIO.*.nupkg").Select(Path.GetFileNameWithoutExtension).Single(n => !n!.StartsWith("SocketIO.Redis", StringComparison.Ordinal))!;
        Version = socketIO["SocketIO.".Length..];
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Dir, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>
/// What a team adopting the library gets: packages with their metadata, documentation and readme;
/// the getting-started sample restored from those packages (a local folder feed) serving the
/// official socket.io-client; and docs/getting-started.md whose code is the sample's.
/// </summary>
public sealed class PackageTests(PackedFeed feed) : IClassFixture<PackedFeed>
{
    private static string SampleDir => Path.Combine(Repo.Root, "samples", "GettingStarted");

    [Fact]
    public void Each_package_has_its_id_version_license_readme_and_xml_documentation()
    {
        foreach (var package in PackedFeed.Packages)
        {
            var path = Path.Combine(feed.Dir, $"{package}.{feed.Version}.nupkg");
            Assert.True(File.Exists(path), $"{path} not packed");
            using var zip = ZipFile.OpenRead(path);
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains($"lib/net10.0/{package}.dll", entries);
            Assert.Contains($"lib/net10.0/{package}.xml", entries);
            Assert.Contains("README.md", entries);

            XDocument nuspec;
            using (var stream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open())
            {
                nuspec = XDocument.Load(stream);
            }

            var metadata = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Meta(string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
            Assert.Equal(package, Meta("id"));
            Assert.Equal(feed.Version, Meta("version"));
            Assert.Equal("MIT", Meta("license"));
            Assert.Equal("README.md", Meta("readme"));
            Assert.False(string.IsNullOrWhiteSpace(Meta("description")), $"{package}: no description");

            // documentation of every public member: the XML file documents the public types
            using var xml = zip.GetEntry($"lib/net10.0/{package}.xml")!.Open();
            var members = XDocument.Load(xml).Descendants("member").Select(m => m.Attribute("name")!.Value).ToList();
            Assert.True(members.Count > 20, $"{package}: {members.Count} documented members");

            // a library package depends on the others at the same version, not on project paths
            var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")!.Value);
            var expected = package switch
            {
                "SocketIO" => ["EngineIO"],
                "SocketIO.Redis" => new[] { "SocketIO" },
                _ => [],
            };
            foreach (var dependency in expected)
            {
                Assert.True(dependencies.TryGetValue(dependency, out var version) && version == feed.Version, $"{package} should depend on {dependency} {feed.Version}: {string.Join(", ", dependencies)}");
            }
        }
    }

    [Fact]
    public void The_getting_started_page_shows_the_samples_code()
    {
        var page = File.ReadAllText(Path.Combine(Repo.Root, "docs", "getting-started.md"));
        var program = Lines(File.ReadAllText(Path.Combine(SampleDir, "Program.cs")));
        var blocks = Regex.Matches(page, "```csharp\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
        Assert.True(blocks.Count >= 6, $"docs/getting-started.md has {blocks.Count} csharp blocks");
        foreach (var block in blocks)
        {
            var lines = Lines(block);
            Assert.True(IndexOf(program, lines) >= 0, $"this block of docs/getting-started.md is not in samples/GettingStarted/Program.cs (edit both):\n{block}");
        }

        // the csproj the page shows is the sample's
        var project = Lines(File.ReadAllText(Path.Combine(SampleDir, "GettingStarted.csproj")));
        var xmlBlocks = Regex.Matches(page, "```xml\n(.*?)```", RegexOptions.Singleline).Select(m => Lines(m.Groups[1].Value)).ToList();
        Assert.Contains(xmlBlocks, b => b.Count > 0 && IndexOf(project, b) >= 0);
    }

    [Fact]
    public async Task The_sample_built_from_the_packages_serves_the_official_client()
    {
        // the sample references the version being packed
        var csproj = File.ReadAllText(Path.Combine(SampleDir, "GettingStarted.csproj"));
        foreach (var package in new[] { "SocketIO", "SocketIO.Redis" })
        {
            Assert.Contains($"<PackageReference Include=\"{package}\" Version=\"{feed.Version}\" />", csproj, StringComparison.Ordinal);
        }

        var work = Path.Combine(Path.GetTempPath(), "sio-sample-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            foreach (var file in Directory.GetFiles(SampleDir))
            {
                File.Copy(file, Path.Combine(work, Path.GetFileName(file)));
            }

            // the local feed for our packages only; the normal source (through the machine's
            // package cache, read-only) for the third-party ones
            var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } g
                ? g
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            File.WriteAllText(Path.Combine(work, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed.Dir}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="local">
                      <package pattern="EngineIO" />
                      <package pattern="SocketIO" />
                      <package pattern="SocketIO.Redis" />
                    </packageSource>
                    <packageSource key="nuget.org">
                      <package pattern="*" />
                    </packageSource>
                  </packageSourceMapping>
                  <fallbackPackageFolders>
                    <add key="machine" value="{globalPackages}" />
                  </fallbackPackageFolders>
                </configuration>
                """);

            // a package folder of its own: the packed 0.x never lands in the machine's cache
            var build = await ChildProcess.RunAsync(
                "dotnet",
                ["build", Path.Combine(work, "GettingStarted.csproj"), "-c", "Release", "-o", Path.Combine(work, "out"), "-p:NuGetAudit=false"],
                work,
                TimeSpan.FromMinutes(8),
                new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(work, "packages") });
            Assert.True(build.ExitCode == 0 && !build.TimedOut, $"the sample did not build from the packages:\n{build.Output}");
            Assert.True(Directory.Exists(Path.Combine(work, "packages", "socketio", feed.Version)), "SocketIO was not restored from the local feed");

            var port = ChildProcess.FreePort();
            var url = $"http://127.0.0.1:{port}";
            var psi = ChildProcess.Info("dotnet", [Path.Combine(work, "out", "GettingStarted.dll"), "--urls", url], work);
            psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
            psi.Environment["Logging__LogLevel__Default"] = "Warning";
            using var sample = Running.Start(psi);
            await WaitUntilServingAsync(url, sample);

            foreach (var transport in new[] { "polling", "websocket" })
            {
                var client = await ChildProcess.RunAsync(
                    "node",
                    ["getting_started_client.mjs", "--url", url, "--transport", transport],
                    Path.Combine(Repo.Root, "tests", "Interop"),
                    TimeSpan.FromSeconds(90));
                Assert.True(client.ExitCode == 0 && !client.TimedOut, $"official client ({transport}) against the sample:\n{client.Output}\nsample output:\n{sample.Output}");
                Assert.Contains($"PASS [{transport}]", client.Output, StringComparison.Ordinal);
            }

            // the server side saw the client's events
            Assert.Contains("howdy: stranger", sample.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task WaitUntilServingAsync(string url, Running sample)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var attempt = 0; attempt < 600 && DateTime.UtcNow < deadline; attempt++)
        {
            Assert.False(sample.Process.HasExited, $"the sample exited:\n{sample.Output}");
            try
            {
                using var response = await http.GetAsync($"{url}/socket.io/?EIO=4&transport=polling");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(100);
        }

        Assert.Fail($"the sample did not answer a handshake within 60 s:\n{sample.Output}");
    }

    private static List<string> Lines(string text) =>
        text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    private static int IndexOf(List<string> haystack, List<string> needle)
    {
        for (var i = 0; i + needle.Count <= haystack.Count; i++)
        {
            if (haystack.Skip(i).Take(needle.Count).SequenceEqual(needle))
            {
                return i;
            }
        }

        return -1;
    }
}
