using Bulk.Broker.Streams;

namespace Bulk.Front;

/// <summary>Lets endpoints that answer from a stream's fold wait for a Front that just started to read the stream.</summary>
public static class CaughtUpFilter
{
    /// <summary>How long a request waits; past it (the broker away, say) the fold answers as it stands.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Before each endpoint of <paramref name="builder"/> runs, waits (up to <see cref="Patience"/>) until
    /// <paramref name="stream"/> holds what the stream held at start, so that the endpoint does not say "unknown" meanwhile.
    /// </summary>
    public static TBuilder WaitsUntilCaughtUp<TBuilder, TEvent>(this TBuilder builder, Func<IServiceProvider, EventStream<TEvent>> stream)
        where TBuilder : IEndpointConventionBuilder
        where TEvent : class
    {
        builder.AddEndpointFilter(async (context, next) =>
        {
            await stream(context.HttpContext.RequestServices).WaitForStartupReplayAsync(Patience);
            return await next(context);
        });
        return builder;
    }
}
