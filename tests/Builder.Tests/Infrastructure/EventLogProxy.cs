using System.Reflection;
using System.Runtime.ExceptionServices;
using Builder.Events;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Infrastructure;

/// <summary>
/// The gateway's own <see cref="IEventLog"/> behind a proxy that passes every call through unless
/// the test's interceptor answers it (a held read, a failing append). A proxy, not a subclass, so
/// it follows the interface as it grows.
/// </summary>
public class EventLogProxy : DispatchProxy
{
    private IEventLog _inner = null!;
    private Func<IEventLog, MethodInfo, object?[], object?> _intercept = null!;

    /// <summary>
    /// Puts the proxy in front of the log the gateway registered (its last <see cref="IEventLog"/>);
    /// <paramref name="intercept"/> gets the real log, the method and the arguments, and returns the
    /// call's result to answer it itself, or null to pass it through.
    /// </summary>
    public static void Decorate(IServiceCollection services, Func<IEventLog, MethodInfo, object?[], object?> intercept)
    {
        var original = services.Last(d => d.ServiceType == typeof(IEventLog));
        services.Add(ServiceDescriptor.Singleton(sp =>
        {
            var proxy = Create<IEventLog, EventLogProxy>();
            var self = (EventLogProxy)(object)proxy;
            self._inner = (IEventLog)original.ImplementationFactory!(sp);
            self._intercept = intercept;
            return proxy;
        }));
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        args ??= [];
        if (_intercept(_inner, targetMethod, args) is { } answer)
        {
            return answer;
        }

        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
