using InteropHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var port = 3000;
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--port" && int.TryParse(args[i + 1], out var p))
    {
        port = p;
    }
}

await using var server = await InteropServer.StartAsync(port, messagePack: args.Contains("--msgpack"));
Console.WriteLine($"Interop host listening on http://127.0.0.1:{server.Port}");

// The web host's console lifetime handles Ctrl+C and SIGTERM by stopping the application
// (and suppresses the default termination), so wait for that rather than for ProcessExit.
var done = new TaskCompletionSource();
using var stopping = server.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => done.TrySetResult());
await done.Task;
