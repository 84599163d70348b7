using RabbitMQ.Client;

namespace Bulk.Broker;

/// <summary>Waits for the broker's answer to a method no longer than the caller's token allows.</summary>
/// <remarks>
/// RabbitMQ.Client 7.2 takes a token on every method, but once a method is sent only its own continuation timeout (20 s)
/// ends the wait for the answer. A silent broker (a hung node, a network partition) then costs each call 20 s, one
/// after another, whatever the caller's deadline: a POST with <c>Front__PublishTimeoutSeconds=5</c> answered after 20.8 s.
/// Here the caller stops waiting at its deadline. The method stays sent, and the broker may still carry it out when it
/// answers again: what it then leaves behind (a channel that opened late) is closed.
/// </remarks>
public static class BrokerAnswers
{
    /// <summary><paramref name="call"/>'s result, or <see cref="OperationCanceledException"/> at <paramref name="cancellationToken"/>.</summary>
    /// <param name="leftBehind">Given the result if it comes after the caller stopped waiting, to undo it.</param>
    public static async Task<T> WithinAsync<T>(Task<T> call, CancellationToken cancellationToken, Func<T, Task>? leftBehind = null)
    {
        try
        {
            return await call.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!call.IsCompleted)
        {
            _ = UndoLateAsync(call, leftBehind);
            throw;
        }
    }

    /// <summary><paramref name="call"/>, or <see cref="OperationCanceledException"/> at <paramref name="cancellationToken"/>.</summary>
    public static async Task WithinAsync(Task call, CancellationToken cancellationToken)
    {
        try
        {
            await call.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!call.IsCompleted)
        {
            _ = UndoLateAsync(call, null);
            throw;
        }
    }

    /// <summary>A new channel on <paramref name="connection"/>; one that opens after the caller gave up is closed.</summary>
    public static Task<IChannel> OpenChannelAsync(IConnection connection, CreateChannelOptions? options, CancellationToken cancellationToken) =>
        WithinAsync(connection.CreateChannelAsync(options, cancellationToken), cancellationToken, late => late.DisposeAsync().AsTask());

    /// <summary>Closes <paramref name="channel"/>, waiting for the broker's close-ok no longer than <paramref name="cancellationToken"/>:
    /// past it (or once it has passed) the close goes on without the caller.</summary>
    public static async Task DisposeWithinAsync(IChannel channel, CancellationToken cancellationToken)
    {
        var closing = channel.DisposeAsync().AsTask();
        try
        {
            await closing.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!closing.IsCompleted)
        {
            _ = UndoLateAsync(closing, null);
        }
    }

    private static async Task UndoLateAsync(Task call, Func<Task>? undo)
    {
        try
        {
            await call;
        }
        catch (Exception)
        {
            return; // the method failed after all, or its connection closed: nothing of it stands
        }

        if (undo is not null)
        {
            try
            {
                await undo();
            }
            catch (Exception)
            {
                // The connection went away, and what the method left with it.
            }
        }
    }

    private static Task UndoLateAsync<T>(Task<T> call, Func<T, Task>? undo) =>
        UndoLateAsync((Task)call, undo is null ? null : () => undo(call.Result));
}
