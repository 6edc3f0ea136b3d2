using Builder.Cli;

return await Commands.InvokeAsync(args, Console.Out, Console.Error);
