namespace Builder.Cli;

/// <summary>The tool's exit codes: each failure class has its own, so scripts can tell them apart.</summary>
public static class ExitCodes
{
    /// <summary>Done: the events were received, the build completed, the request was accepted.</summary>
    public const int Ok = 0;

    /// <summary>The gateway answered with a failure (an error ack, an HTTP error, a failed or cancelled build).</summary>
    public const int Failed = 1;

    /// <summary>A command-line argument is invalid (unknown option, JSON that does not parse).</summary>
    public const int BadArgument = 2;

    /// <summary>Nothing answers at the gateway's address.</summary>
    public const int Unreachable = 3;

    /// <summary>The gateway refused the credential (the token's error code is printed).</summary>
    public const int AuthRefused = 4;

    /// <summary>The credential does not give access to the project.</summary>
    public const int Forbidden = 5;

    /// <summary>What was awaited (<c>--until</c>, the build's end, an ack) did not come in time.</summary>
    public const int TimedOut = 6;
}

/// <summary>A failure the tool reports as one line on stderr and an exit code.</summary>
public sealed class CliException(int exitCode, string message, string? code = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    /// <summary>The gateway's error code (TOKEN_EXPIRED, FORBIDDEN, ...) when it gave one.</summary>
    public string? Code { get; } = code;

    /// <summary>The exit code of a gateway error code: auth codes → 4, FORBIDDEN → 5, others → 1.</summary>
    public static int ExitCodeOf(string? code) => code switch
    {
        "TOKEN_MISSING" or "TOKEN_INVALID" or "TOKEN_EXPIRED" or "INVALID_API_KEY" or "NOT_A_PRODUCER" => ExitCodes.AuthRefused,
        "FORBIDDEN" => ExitCodes.Forbidden,
        _ => ExitCodes.Failed,
    };
}
