using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Cluster.Tests;

/// <summary>
/// nginx (the Debian package) run by the test user with its own prefix, configuration and logs in a
/// temporary folder, in front of the gateway nodes on a free loopback port: the configuration the
/// README documents for a local cluster. Sticky sessions without nginx Plus: the answer to the first
/// request sets a cookie <c>srv</c> naming the node that answered, and requests that carry it go to
/// that node (long-polling needs every request of a session on the node that holds it).
/// </summary>
public sealed class NginxProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private NginxProcess(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
        Url = new Uri($"http://127.0.0.1:{port}/");
    }

    public int Port { get; }

    public Uri Url { get; }

    /// <summary>The configuration for nodes listening on <paramref name="upstreams"/> (host:port), nginx on <paramref name="port"/>.</summary>
    public static string Config(IReadOnlyList<string> upstreams, int port, string dir)
    {
        var text = new StringBuilder();
        if (Environment.UserName == "root")
        {
            text.AppendLine("user root;"); // workers write the temporary folders of this prefix
        }

        text.AppendLine(CultureInfo.InvariantCulture, $$"""
            worker_processes 1;
            daemon off;
            pid {{dir}}/nginx.pid;
            error_log {{dir}}/error.log warn;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path {{dir}}/body;
              proxy_temp_path {{dir}}/proxy;
              fastcgi_temp_path {{dir}}/fastcgi;
              uwsgi_temp_path {{dir}}/uwsgi;
              scgi_temp_path {{dir}}/scgi;

              upstream gateways {
            {{string.Concat(upstreams.Select(u => $"    server {u};\n"))}}  }

              # a request that names its node (cookie srv) goes there; the others are spread
              map $cookie_srv $gateway {
                default gateways;
            {{string.Concat(upstreams.Select(u => $"    \"{u}\" {u};\n"))}}  }

              map $http_upgrade $connection_upgrade {
                default upgrade;
                ''      close;
              }

              server {
                listen 127.0.0.1:{{port}};
                location / {
                  proxy_pass http://$gateway;
                  proxy_http_version 1.1;
                  proxy_set_header Upgrade $http_upgrade;
                  proxy_set_header Connection $connection_upgrade;
                  proxy_set_header Host $host;
                  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                  proxy_buffering off;
                  proxy_read_timeout 60s;
                  add_header Set-Cookie "srv=$upstream_addr; Path=/; HttpOnly" always;
                }
              }
            }
            """);
        return text.ToString();
    }

    public static async Task<NginxProcess> StartAsync(IReadOnlyList<string> upstreams)
    {
        var binary = new[] { "/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("nginx is not installed; ./test.sh installs the Debian package nginx.");
        var dir = Directory.CreateTempSubdirectory("cluster-nginx-").FullName;
        var port = RedisProcess.FreePort();
        await File.WriteAllTextAsync(Path.Combine(dir, "nginx.conf"), Config(upstreams, port, dir));
        var process = Process.Start(new ProcessStartInfo(binary)
        {
            ArgumentList = { "-p", dir, "-c", Path.Combine(dir, "nginx.conf"), "-e", Path.Combine(dir, "error.log") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var nginx = new NginxProcess(process, dir, port);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            await Deadline.UntilAsync(async () =>
            {
                if (process.HasExited)
                {
                    string log;
                    lock (output)
                    {
                        log = output.ToString();
                    }

                    throw new InvalidOperationException($"nginx exited with {process.ExitCode}: {log}");
                }

                try
                {
                    using var response = await http.GetAsync(new Uri(nginx.Url, "healthz"));
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(30), "nginx answering /healthz");
        }
        catch
        {
            await nginx.DisposeAsync();
            throw;
        }

        return nginx;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
