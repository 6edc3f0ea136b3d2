using ConformanceHost;
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

await using var server = await ConformanceServer.StartAsync(port);
Console.WriteLine($"Conformance host listening on http://localhost:{server.Port}");

// the web host's console lifetime turns Ctrl+C / SIGTERM into ApplicationStopping
var done = new TaskCompletionSource();
using var stopping = server.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => done.TrySetResult());
await done.Task;
