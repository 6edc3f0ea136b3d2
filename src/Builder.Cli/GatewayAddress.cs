namespace Builder.Cli;

/// <summary>A gateway URL split as the Socket.IO client needs it: the server's base URL and the namespace.</summary>
public sealed record GatewayAddress(Uri Server, string Namespace, string Path)
{
    /// <summary>
    /// Reads <c>http://host:port/namespace</c> (the document's form); without a path the namespace is
    /// <paramref name="defaultNamespace"/>. Anything but an absolute http(s) or ws(s) URL is a bad argument.
    /// </summary>
    public static GatewayAddress Parse(string what, string url, string path, string defaultNamespace)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "ws" or "wss") || uri.Host.Length == 0)
        {
            throw new CliException(ExitCodes.BadArgument, $"{what} \"{url}\" is not a gateway URL: expected http://host:port/namespace (e.g. http://localhost:3001/builder)");
        }

        var scheme = uri.Scheme switch { "ws" => "http", "wss" => "https", var s => s };
        var server = new UriBuilder(scheme, uri.Host, uri.Port).Uri;
        var nsp = uri.AbsolutePath.TrimEnd('/');
        if (nsp.Length == 0)
        {
            nsp = defaultNamespace;
        }

        var normalizedPath = "/" + path.Trim('/');
        return new GatewayAddress(server, nsp, normalizedPath);
    }

    /// <summary>The URL the Socket.IO client connects to (server + namespace).</summary>
    public Uri NamespaceUrl => new(Server, Namespace);

    /// <summary>An HTTP endpoint of the gateway (relative to the server).</summary>
    public Uri Http(string relative) => new(Server, relative);
}
