import NIOCore

/// Runs the jobs of tasks that prefer it on one event loop. The server runs each connection's
/// requests on the loop that reads and writes its socket, and `ForecourtClient` its callers'
/// tasks on its connection's loop, so that a call does not hop to Swift's global executor and
/// back (docs/architecture.md, "Threads"). Nothing such a task runs may block: blocking work
/// (libpq) goes to the pool's threads, and long CPU work (sealing a batch) asks for the global
/// executor.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
