using System.Diagnostics;
using Builder.Gateway;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Builder.Tests;

/// <summary>Bad configuration stops start-up with a message naming the key.</summary>
public sealed class ConfigurationTests
{
    public static TheoryData<string, string?, string> BadSettings => new()
    {
        { "Builder:Jwt:Secret", "too-short", "Builder:Jwt:Secret" },
        { "Builder:Jwt:PublicKeyFile", "/nonexistent/key.pem", "Builder:Jwt:PublicKeyFile" },
        { "Builder:Cors:Origins:0", "not a url", "Builder:Cors:Origins" },
        { "Builder:Heartbeat:IntervalSeconds", "0", "Builder:Heartbeat:IntervalSeconds" },
        { "Builder:Heartbeat:MaxMissed", "0", "Builder:Heartbeat:MaxMissed" },
        { "Builder:Store:Provider", "mongodb", "Builder:Store:Provider" },
        { "Builder:Ingest:ApiKeys:0", "short", "Builder:Ingest:ApiKeys" },
        { "Builder:Access:CheckUrl", "not-absolute", "Builder:Access:CheckUrl" },
        { "Builder:Runner:MaxConcurrentBuilds", "0", "Builder:Runner:MaxConcurrentBuilds" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_value_is_refused_naming_its_key(string key, string? value, string named)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = "configuration-tests-secret-0123456789-abcdef",
            ["Builder:Store:Provider"] = "memory",
            [key] = value,
        };
        var ex = Assert.Throws<OptionsValidationException>(() => GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings)));
        Assert.Contains(ex.Failures, f => f.Contains(named, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, 1)]
    [InlineData("false", 0)]
    public async Task Memory_IdleTrim_runs_or_leaves_out_the_idle_memory_trimmer(string? idleTrim, int trimmers)
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            if (idleTrim is not null)
            {
                s["Builder:Memory:IdleTrim"] = idleTrim;
            }
        });
        var hosted = gateway.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>();
        Assert.Equal(trimmers, hosted.OfType<EngineIO.IdleMemoryTrimmer>().Count());
    }

    [Fact]
    public async Task The_gateway_process_exits_with_a_message_naming_the_missing_secret()
    {
        // outside Development no secret is embedded: the real process must refuse to start
        var dll = Path.Combine(AppContext.BaseDirectory, "Builder.Gateway.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--urls", "http://127.0.0.1:0" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Builder:Jwt:Secret", await stderr, StringComparison.Ordinal);
        _ = await stdout;
    }
}
