import Logging
import ServiceLifecycle

/// A background job that runs passes: again at once while a pass says there is more, otherwise
/// after its interval (jittered, so replicas started together do not run in step), at the next
/// due time a pass names, or as soon as its `WakeSignal` is signalled (a notification from
/// PostgreSQL, or work handed over in process). Graceful shutdown ends the wait at once; a pass
/// under way finishes. Every loop of the services that finds work by itself is one of these, so an
/// idle service sleeps instead of polling.
public struct PeriodicWork: Service {
    /// What a pass found.
    public enum Next: Sendable, Equatable {
        /// It worked a full batch: more may be waiting, run again at once.
        case now
        /// The earliest known work is due after this long (the interval caps it).
        case after(Duration)
        /// Nothing known: wait the interval, or a wake-up.
        case idle
    }

    public let name: String
    let interval: Duration
    let wake: WakeSignal?
    let logger: Logger
    /// How long to wait after a failed pass (default: the interval).
    let errorPause: Duration
    /// Waited for before the first pass (e.g. the schema's migrations).
    let startAfter: (@Sendable () async throws -> Void)?
    let pass: @Sendable () async throws -> Next

    public init(
        name: String,
        interval: Duration,
        wake: WakeSignal? = nil,
        logger: Logger,
        errorPause: Duration? = nil,
        startAfter: (@Sendable () async throws -> Void)? = nil,
        pass: @escaping @Sendable () async throws -> Next
    ) {
        self.name = name
        self.interval = interval
        self.wake = wake
        self.logger = logger
        self.errorPause = errorPause ?? interval
        self.startAfter = startAfter
        self.pass = pass
    }

    public func run() async throws {
        if let startAfter {
            do { try await cancelWhenGracefulShutdown { try await startAfter() } } catch { return }
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var pause = interval
            do {
                switch try await pass() {
                case .now: continue
                case .after(let due): pause = max(.zero, min(due, interval))
                case .idle: pause = Self.jittered(interval)
                }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.warning("\(name) failed; trying again", metadata: ["error": .string(MessageFailure.loggable(error))])
                pause = errorPause
            }
            guard pause > .zero else { continue }
            let wake = wake, wait = pause
            try? await cancelWhenGracefulShutdown {
                if let wake { await wake.wait(upTo: wait) } else { try await Task.sleep(for: wait) }
            }
        }
    }

    /// The interval give or take a tenth.
    static func jittered(_ interval: Duration) -> Duration {
        interval * Double.random(in: 0.9...1.1)
    }
}
