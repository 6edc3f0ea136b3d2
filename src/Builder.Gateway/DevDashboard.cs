using System.Text.Json;
using Builder.Contracts;
using Builder.Events;
using Builder.Runner;

namespace Builder.Gateway;

/// <summary>
/// The development dashboard (the static page of the repository's <c>web/</c> folder, at <c>/</c> and
/// <c>/dashboard</c>) and the credential-free <c>POST /dev/projects/{projectId}/builds</c> its
/// "Start simulated build" form calls. Mapped only in Development with <c>Builder:Dev:Enabled</c>:
/// the build endpoint has no credential by design, so it must never exist anywhere else.
/// </summary>
internal static class DevDashboard
{


    /// <summary>The files the page is made of: URL → path under web/ and content type. Nothing else of web/ is served.</summary>
    private static readonly (string Url, string File, string ContentType)[] s_files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/dashboard", "index.html", "text/html; charset=utf-8"),
        ("/dashboard/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", "app.css", "text/css; charset=utf-8"),
        ("/socket.io-client/socket.io.min.js", "vendor/socket.io.min.js", "text/javascript; charset=utf-8"),
        ("/socket.io-client/LICENSE", "vendor/LICENSE-socket.io-client", "text/plain; charset=utf-8"),
    ];

    public static void Map(WebApplication app, BuilderOptions options)
    {
        if (!app.Environment.IsDevelopment() || !options.Dev.Enabled)
        {
            return;
        }

        // like /dev/token, everything here answers only on loopback (GatewayGuards.LoopbackOnlyFilter)
        app.MapPost("/dev/projects/{projectId}/builds", StartBuildAsync).AddEndpointFilter(GatewayGuards.LoopbackOnlyFilter);

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(DevDashboard).FullName!);
        var webRoot = FindWebRoot(app.Environment.ContentRootPath);
        if (webRoot is null)
        {
            logger.LogWarning("Dashboard not served: no web/index.html found above {ContentRoot} or {BaseDirectory}", app.Environment.ContentRootPath, AppContext.BaseDirectory);
            return;
        }

        logger.LogInformation("Development dashboard at / and /dashboard, served from {WebRoot}", webRoot);
        foreach (var (url, file, contentType) in s_files)
        {
            var path = Path.Combine(webRoot, file);
            app.MapGet(url, (HttpContext context) =>
            {
                // the page is edited while the gateway runs: always revalidate
                context.Response.Headers.CacheControl = "no-cache";
                return File.Exists(path) ? Results.File(path, contentType, enableRangeProcessing: false) : Results.NotFound();
            }).AddEndpointFilter(GatewayGuards.LoopbackOnlyFilter);
        }
    }

    /// <summary>The folder holding web/index.html: the content root or one of its parents, else one above the binaries (tests, <c>dotnet run</c> from elsewhere).</summary>
    private static string? FindWebRoot(string contentRoot)
    {
        foreach (var start in new[] { contentRoot, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "web");
                if (File.Exists(Path.Combine(candidate, "index.html")))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Starts a simulated build the way <c>POST /api/projects/{projectId}/builds</c> does (same rules,
    /// same answers: 202 {buildId}, 400 VALIDATION_FAILED with fields, 409 BUILD_RUNNING, 503
    /// TOO_MANY_BUILDS) but without a producer credential: the dashboard has none.
    /// </summary>
    private static Task<IResult> StartBuildAsync(string projectId, HttpRequest request, BuildRunner runner, BuilderOptions options) =>
        GatewayEndpoints.StartBuildCoreAsync(projectId, request, runner, options, "dev-dashboard", simulateRequired: false);


}
