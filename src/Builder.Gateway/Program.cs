using Builder.Gateway;
using Microsoft.Extensions.Options;

try
{
    var app = GatewayApp.Build(args);
    app.Run();
}
catch (OptionsValidationException ex)
{
    Console.Error.WriteLine("Invalid configuration:");
    foreach (var failure in ex.Failures)
    {
        Console.Error.WriteLine("  " + failure);
    }

    Environment.Exit(2);
}
