using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Spectre.Console;

namespace Builder.Cli;

/// <summary>The command line of the tool: the document's invocation on the root command and the daily commands.</summary>
public static class Commands
{
    private const string DefaultGateway = "http://localhost:3001";

    private static readonly Option<string> s_gateway = new("--gateway", "-g")
    {
        Description = "The gateway's URL (default: BUILDER_URL or http://localhost:3001).",
        Recursive = true,
    };

    private static readonly Option<string> s_path = new("--path")
    {
        Description = "The Socket.IO path.",
        DefaultValueFactory = _ => "/socket.io",
        Recursive = true,
    };

    private static readonly Option<string> s_token = new("--token", "-t")
    {
        Description = "A JWT (default: BUILDER_TOKEN): the user's for the socket, an agent/service token for the producer API.",
        Recursive = true,
    };

    private static readonly Option<string> s_apiKey = new("--api-key")
    {
        Description = "A producer API key (default: BUILDER_API_KEY), sent as X-Api-Key.",
        Recursive = true,
    };

    private static readonly Option<bool> s_json = new("--json")
    {
        Description = "Print one JSON object per line.",
        Recursive = true,
    };

    private static readonly Option<double?> s_timeout = new("--timeout")
    {
        Description = "Give up after this many seconds (exit code 6).",
        Recursive = true,
    };

    /// <summary>The root command and its subcommands.</summary>
    public static RootCommand Build(TextWriter output, TextWriter error, IAnsiConsole? console = null)
    {
        var root = new RootCommand(
            "The Builder gateway from the command line. With a URL it is the protocol document's tool:\n"
            + "  builder http://localhost:3001/builder --auth '{\"token\":\"...\"}' --emit 'join-project' '{\"projectId\":\"xxx\"}' --on 'agent:status:update'\n"
            + "Exit codes: 0 ok, 1 failed, 2 bad argument, 3 gateway unreachable, 4 credential refused, 5 forbidden, 6 timed out.");
        root.Options.Add(s_gateway);
        root.Options.Add(s_path);
        root.Options.Add(s_token);
        root.Options.Add(s_apiKey);
        root.Options.Add(s_json);
        root.Options.Add(s_timeout);

        var url = new Argument<string?>("url") { Description = "The namespace's URL, e.g. http://localhost:3001/builder.", Arity = ArgumentArity.ZeroOrOne };
        var auth = new Option<string>("--auth", "-a") { Description = "The handshake's auth object as JSON, e.g. '{\"token\":\"...\"}'." };
        var emit = new Option<string[]>("--emit", "-e")
        {
            Description = "Emit an event after connecting: its name, then its arguments as JSON. Repeatable.",
            AllowMultipleArgumentsPerToken = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var on = new Option<string[]>("--on")
        {
            Description = "Print this event ('*' for every event; the default). Repeatable.",
            Arity = ArgumentArity.OneOrMore,
        };
        var until = new Option<string>("--until") { Description = "Exit (code 0) once this event was received." };
        var count = new Option<int?>("--count") { Description = "Exit (code 0) after printing this many events." };
        root.Arguments.Add(url);
        root.Options.Add(auth);
        root.Options.Add(emit);
        root.Options.Add(on);
        root.Options.Add(until);
        root.Options.Add(count);
        root.SetAction((parse, ct) => Run(error, () =>
        {
            var target = parse.GetValue(url) ?? throw new CliException(ExitCodes.BadArgument, "A gateway URL is required, e.g. builder http://localhost:3001/builder --auth '{\"token\":\"...\"}' --on '*' (or a command: builder --help).");
            var emits = EmitGroups(parse, emit);
            var settings = new ListenSettings(
                GatewayAddress.Parse("The URL", target, parse.GetValue(s_path)!, "/"),
                AuthOf(parse, auth),
                emits,
                parse.GetValue(on) ?? [],
                parse.GetValue(until),
                parse.GetValue(count),
                Timeout(parse),
                parse.GetValue(s_json));
            return ListenCommand.RunAsync(settings, output, error, ct);
        }));

        root.Subcommands.Add(TokenCommand(output, error));
        root.Subcommands.Add(WatchCommand(output, error, console));
        root.Subcommands.Add(BuildCommand(output, error));
        root.Subcommands.Add(PublishCommand(output, error));
        root.Subcommands.Add(DecideCommand(output, error));
        root.Subcommands.Add(ReplayCommand(output, error));
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; a command-line mistake is exit code 2.</summary>
    public static async Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, IAnsiConsole? console = null, CancellationToken cancellationToken = default)
    {
        var root = Build(output, error, console);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await error.WriteLineAsync("builder: error: " + e.Message);
            }

            await error.WriteLineAsync("Try 'builder --help'.");
            return ExitCodes.BadArgument;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
    }

    private static async Task<int> Run(TextWriter error, Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (CliException ex)
        {
            await error.WriteLineAsync("builder: error: " + ex.Message);
            return ex.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }
    }

    /// <summary>The <c>--emit</c> groups in command-line order: each is a name and the JSON arguments after it.</summary>
    private static List<(string Name, List<JsonElement> Args)> EmitGroups(ParseResult parse, Option<string[]> emit)
    {
        var groups = new List<(string Name, List<JsonElement> Args)>();
        var tokens = parse.Tokens;
        for (var i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Type != TokenType.Option || !(tokens[i].Value == emit.Name || emit.Aliases.Contains(tokens[i].Value)))
            {
                continue;
            }

            var values = new List<string>();
            while (i + 1 < tokens.Count && tokens[i + 1].Type == TokenType.Argument)
            {
                values.Add(tokens[++i].Value);
            }

            if (values.Count == 0)
            {
                throw new CliException(ExitCodes.BadArgument, "--emit needs an event name (and its JSON arguments).");
            }

            var args = new List<JsonElement>();
            for (var a = 1; a < values.Count; a++)
            {
                args.Add(JsonArgument.Parse($"--emit '{values[0]}' argument {a}", values[a]));
            }

            groups.Add((values[0], args));
        }

        return groups;
    }

    private static JsonElement? AuthOf(ParseResult parse, Option<string> auth)
    {
        if (parse.GetValue(auth) is { } text)
        {
            var element = JsonArgument.Parse("--auth", text);
            return element.ValueKind == JsonValueKind.Object
                ? element
                : throw new CliException(ExitCodes.BadArgument, "--auth must be a JSON object, e.g. '{\"token\":\"...\"}'.");
        }

        return TokenOf(parse) is { } token ? JsonSerializer.SerializeToElement(new { token }) : null;
    }

    private static string? TokenOf(ParseResult parse) => parse.GetValue(s_token) ?? Environment.GetEnvironmentVariable("BUILDER_TOKEN");

    private static string? ApiKeyOf(ParseResult parse) => parse.GetValue(s_apiKey) ?? Environment.GetEnvironmentVariable("BUILDER_API_KEY");

    private static TimeSpan? Timeout(ParseResult parse) =>
        parse.GetValue(s_timeout) is { } seconds
            ? (seconds > 0 ? TimeSpan.FromSeconds(seconds) : throw new CliException(ExitCodes.BadArgument, "--timeout must be a positive number of seconds."))
            : null;

    /// <summary>The gateway of the daily commands (their namespace is always /builder).</summary>
    private static GatewayAddress Gateway(ParseResult parse) =>
        GatewayAddress.Parse("--gateway", parse.GetValue(s_gateway) ?? Environment.GetEnvironmentVariable("BUILDER_URL") ?? DefaultGateway, parse.GetValue(s_path)!, "/builder") with { Namespace = "/builder" };

    private static string RequireToken(ParseResult parse) =>
        TokenOf(parse) ?? throw new CliException(ExitCodes.BadArgument, "A user token is required: --token or BUILDER_TOKEN (builder token mints one).");

    private static Command TokenCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("token", "Mint a token: from the gateway's /dev/token (Development, loopback), or signed here with --secret (HS256).");
        var user = new Option<string>("--user", "-u") { Description = "The user id (sub).", DefaultValueFactory = _ => "dev-user" };
        var projects = new Option<string>("--projects", "-p") { Description = "The projects the token covers, comma-separated ('*' for all).", DefaultValueFactory = _ => "*" };
        var role = new Option<string>("--role") { Description = "agent or service for a producer token." };
        var secret = new Option<string>("--secret") { Description = "Sign with this HS256 secret (default: BUILDER_JWT_SECRET) instead of asking the gateway." };
        var issuer = new Option<string>("--issuer") { Description = "The iss claim (when the gateway checks Jwt:Issuer)." };
        var audience = new Option<string>("--audience") { Description = "The aud claim (when the gateway checks Jwt:Audience)." };
        var hours = new Option<double>("--hours") { Description = "Lifetime in hours.", DefaultValueFactory = _ => 8 };
        foreach (var o in new Option[] { user, projects, role, secret, issuer, audience, hours })
        {
            command.Options.Add(o);
        }

        command.SetAction((parse, ct) => Run(error, async () =>
        {
            var userId = parse.GetValue(user)!;
            var projectList = parse.GetValue(projects)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var roleName = parse.GetValue(role);
            if (roleName is not null and not ("agent" or "service"))
            {
                throw new CliException(ExitCodes.BadArgument, $"--role \"{roleName}\": expected agent or service.");
            }

            string token;
            if ((parse.GetValue(secret) ?? Environment.GetEnvironmentVariable("BUILDER_JWT_SECRET")) is { } key)
            {
                if (System.Text.Encoding.UTF8.GetByteCount(key) < 32)
                {
                    throw new CliException(ExitCodes.BadArgument, "--secret must be at least 32 bytes (HS256).");
                }

                var lifetime = TimeSpan.FromHours(parse.GetValue(hours));
                token = Sign(key, userId, projectList, roleName, parse.GetValue(issuer), parse.GetValue(audience), lifetime);
            }
            else
            {
                var address = Gateway(parse);
                var query = $"/dev/token?user={Uri.EscapeDataString(userId)}&projects={Uri.EscapeDataString(string.Join(',', projectList))}"
                    + (roleName is null ? string.Empty : "&role=" + roleName);
                using var http = new HttpClient { Timeout = Timeout(parse) ?? GatewayConnection.DefaultTimeout };
                HttpResponseMessage response;
                try
                {
                    response = await http.GetAsync(address.Http(query), ct);
                }
                catch (HttpRequestException ex)
                {
                    throw new CliException(ExitCodes.Unreachable, $"The gateway at {address.Server} is unreachable: {ex.InnerException?.Message ?? ex.Message}");
                }

                using (response)
                {
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new CliException(ExitCodes.Failed, $"The gateway at {address.Server} does not mint tokens ({(int)response.StatusCode} on /dev/token: it does only in Development, on loopback): sign one with --secret.");
                    }

                    using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                    token = doc.RootElement.GetProperty("token").GetString()!;
                }
            }

            await output.WriteLineAsync(parse.GetValue(s_json)
                ? JsonSerializer.Serialize(new { token, userId, projects = projectList, role = roleName })
                : token);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>An HS256 user (or producer) token with the gateway's claims: sub, name, projects, role.</summary>
    internal static string Sign(string secret, string userId, IEnumerable<string> projects, string? role, string? issuer, string? audience, TimeSpan lifetime)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = userId, ["name"] = userId, ["projects"] = projects.ToArray() };
        if (role is not null)
        {
            claims["role"] = role;
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Issuer = string.IsNullOrEmpty(issuer) ? null : issuer,
            Audience = string.IsNullOrEmpty(audience) ? null : audience,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
        });
    }

    private static Command WatchCommand(TextWriter output, TextWriter error, IAnsiConsole? console)
    {
        var command = new Command("watch", "A live view of a project's build: a progress bar per agent and for the build, the phases, the decisions, the deployment; resumes with lastSeq after a disconnect. Ends with the build's result (exit 0 completed, 1 failed or cancelled).");
        var project = new Argument<string>("project") { Description = "The project id." };
        var deployment = new Option<bool>("--deployment") { Description = "After a completed build, wait for its deployment's result too." };
        var plain = new Option<bool>("--plain") { Description = "One line per change instead of the live table (the default when the output is not a terminal)." };
        command.Arguments.Add(project);
        command.Options.Add(deployment);
        command.Options.Add(plain);
        command.SetAction((parse, ct) => Run(error, () =>
        {
            var settings = new WatchSettings(Gateway(parse), RequireToken(parse), parse.GetValue(project)!, parse.GetValue(deployment), parse.GetValue(plain), Timeout(parse));
            return Builder.Cli.WatchCommand.RunAsync(settings, console ?? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }), error, ct);
        }));
        return command;
    }

    private static Command BuildCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("build", "Start or cancel a simulated build through the producer API.");
        var start = new Command("start", "Start a simulated build (POST /api/projects/{project}/builds); prints the buildId.");
        var project = new Argument<string>("project") { Description = "The project id." };
        var requirements = new Option<string>("--requirements", "-r") { Description = "What to build.", DefaultValueFactory = _ => "An online shop with users, products and orders" };
        var deploy = new Option<bool>("--deploy") { Description = "Deploy after the build." };
        var speed = new Option<double?>("--speed") { Description = "Simulation speed factor (1 = real time)." };
        var seed = new Option<int?>("--seed") { Description = "Simulation seed." };
        var faults = new Option<string>("--faults") { Description = "Injected faults as JSON, e.g. '[{\"kind\":\"transient\",\"phase\":\"generate\",\"agentType\":\"backend\",\"count\":2}]'." };
        start.Arguments.Add(project);
        foreach (var o in new Option[] { requirements, deploy, speed, seed, faults })
        {
            start.Options.Add(o);
        }

        start.SetAction((parse, ct) => Run(error, async () =>
        {
            var body = new Dictionary<string, object?>
            {
                ["requirements"] = parse.GetValue(requirements),
                ["simulate"] = true,
                ["deploy"] = parse.GetValue(deploy),
            };
            if (parse.GetValue(speed) is { } s)
            {
                body["speed"] = s;
            }

            if (parse.GetValue(seed) is { } sd)
            {
                body["seed"] = sd;
            }

            if (parse.GetValue(faults) is { } f)
            {
                body["faults"] = JsonArgument.Parse("--faults", f);
            }

            var projectId = parse.GetValue(project)!;
            using var api = Api(parse);
            var answer = await api.PostAsync($"/api/projects/{Uri.EscapeDataString(projectId)}/builds", JsonSerializer.SerializeToElement(body), ct);
            await output.WriteLineAsync(parse.GetValue(s_json) ? answer.GetRawText() : answer.GetProperty("buildId").GetString());
            return ExitCodes.Ok;
        }));

        var cancel = new Command("cancel", "Cancel a running build (POST /api/projects/{project}/builds/{buildId}/cancel).");
        var cancelProject = new Argument<string>("project") { Description = "The project id." };
        var buildId = new Argument<string>("buildId") { Description = "The build's id (printed by build start)." };
        cancel.Arguments.Add(cancelProject);
        cancel.Arguments.Add(buildId);
        cancel.SetAction((parse, ct) => Run(error, async () =>
        {
            using var api = Api(parse);
            var answer = await api.SendAsync(HttpMethod.Post, $"/api/projects/{Uri.EscapeDataString(parse.GetValue(cancelProject)!)}/builds/{Uri.EscapeDataString(parse.GetValue(buildId)!)}/cancel?by=cli", null, ct);
            await output.WriteLineAsync(parse.GetValue(s_json) ? answer.GetRawText() : $"cancelled {parse.GetValue(buildId)}");
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(start);
        command.Subcommands.Add(cancel);
        return command;
    }

    private static ProducerApi Api(ParseResult parse) =>
        new(Gateway(parse), ApiKeyOf(parse), ApiKeyOf(parse) is null ? TokenOf(parse) : null, Timeout(parse) ?? GatewayConnection.DefaultTimeout);

    private static Command PublishCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("publish", "Publish an event through the producer API (POST /api/projects/{project}/events); prints its envelope's seq.");
        var project = new Argument<string>("project") { Description = "The project id." };
        var type = new Argument<string>("type") { Description = "The event type, e.g. agent:status:update." };
        var payload = new Argument<string>("payload") { Description = "The payload as JSON." };
        command.Arguments.Add(project);
        command.Arguments.Add(type);
        command.Arguments.Add(payload);
        command.SetAction((parse, ct) => Run(error, async () =>
        {
            var body = JsonSerializer.SerializeToElement(new { type = parse.GetValue(type), payload = JsonArgument.Parse("<payload> (the third argument of publish)", parse.GetValue(payload)!) });
            using var api = Api(parse);
            var envelope = await api.PostAsync($"/api/projects/{Uri.EscapeDataString(parse.GetValue(project)!)}/events", body, ct);
            await output.WriteLineAsync(parse.GetValue(s_json) ? envelope.GetRawText() : $"published {envelope.GetProperty("type").GetString()} seq {envelope.GetProperty("seq").GetInt64()} ({envelope.GetProperty("eventId").GetString()})");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command DecideCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("decide", "Answer a decision as the user (user:decision:response over the socket).");
        var decision = new Argument<string>("decisionId") { Description = "The decision's id (from user:decision:required)." };
        var option = new Argument<string>("optionId") { Description = "The chosen option's id." };
        var feedback = new Option<string>("--feedback") { Description = "Optional feedback." };
        command.Arguments.Add(decision);
        command.Arguments.Add(option);
        command.Options.Add(feedback);
        command.SetAction((parse, ct) => Run(error, async () =>
        {
            var token = RequireToken(parse);
            var timeout = Timeout(parse) ?? GatewayConnection.DefaultTimeout;
            await using var connection = await GatewayConnection.ConnectAsync(Gateway(parse), JsonSerializer.SerializeToElement(new { token }), reconnect: false, timeout, ct);
            var body = new Dictionary<string, string> { ["decisionId"] = parse.GetValue(decision)!, ["selectedOptionId"] = parse.GetValue(option)! };
            if (parse.GetValue(feedback) is { } text)
            {
                body["feedback"] = text;
            }

            var ack = await connection.EmitAsync("user:decision:response", [JsonSerializer.SerializeToElement(body)], ct)
                ?? throw new CliException(ExitCodes.TimedOut, $"The gateway did not acknowledge the answer within {timeout.TotalSeconds:0} s.");
            if (EventPrinter.AckError(ack) is { } failure)
            {
                throw new CliException(CliException.ExitCodeOf(failure.Code), $"The answer was refused: {failure.Code}: {failure.Message}", failure.Code);
            }

            await output.WriteLineAsync(parse.GetValue(s_json) ? ack.GetRawText() : $"answered {body["decisionId"]}: {body["selectedOptionId"]}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command ReplayCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("replay", "Print a project's events after a seq (join-project with lastSeq), then exit.");
        var project = new Argument<string>("project") { Description = "The project id." };
        var from = new Option<long>("--from") { Description = "Print the events after this seq.", DefaultValueFactory = _ => 0 };
        command.Arguments.Add(project);
        command.Options.Add(from);
        command.SetAction((parse, ct) => Run(error, () =>
        {
            var start = parse.GetValue(from);
            if (start < 0)
            {
                throw new CliException(ExitCodes.BadArgument, "--from must be a seq of 0 or more.");
            }

            return Builder.Cli.ReplayCommand.RunAsync(Gateway(parse), RequireToken(parse), parse.GetValue(project)!, start, parse.GetValue(s_json), Timeout(parse) ?? TimeSpan.FromSeconds(60), output, error, ct);
        }));
        return command;
    }
}
