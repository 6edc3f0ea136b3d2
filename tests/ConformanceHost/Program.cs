using ConformanceHost;

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
var done = new TaskCompletionSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    done.TrySetResult();
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => done.TrySetResult();
await done.Task;
