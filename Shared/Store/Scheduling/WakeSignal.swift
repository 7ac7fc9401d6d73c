import NIOConcurrencyHelpers

/// Wakes a loop that waits for work: `signal()` ends every wait under way, or the next one if
/// nobody waits (a signal is never lost between a pass and its wait; many signals fold into one).
/// Loops wait on it instead of polling, so an idle service does nothing until there is work.
public final class WakeSignal: Sendable {
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Ends the waits under way, or the next wait.
    public func signal() {
        let resumed = state.withLockedValue { $0.signal() }
        for continuation in resumed { continuation.resume() }
    }

    /// Returns when signalled, after `timeout`, or when the task is cancelled, whichever is first.
    public func wait(upTo timeout: Duration) async {
        if state.withLockedValue({ $0.takePending() }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        let id = state.withLockedValue { $0.register() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if state.withLockedValue({ $0.park(id, continuation) }) { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.cancel(id) }?.resume()
        }
    }

    /// Each waiter is registered before it parks, so a signal or a cancellation that comes first
    /// is remembered, and every continuation is resumed exactly once, by whoever removes it.
    struct State {
        enum Waiter {
            case registered
            case parked(CheckedContinuation<Void, Never>)
            case released
        }

        var waiters: [UInt64: Waiter] = [:]
        var nextId: UInt64 = 0
        var pending = false

        mutating func takePending() -> Bool {
            defer { pending = false }
            return pending
        }

        /// A signal that came after the wait looked for one (`takePending`) and before this
        /// registration is this waiter's: it is released at once, not left to its timeout.
        mutating func register() -> UInt64 {
            nextId += 1
            waiters[nextId] = takePending() ? .released : .registered
            return nextId
        }

        /// True when the waiter was released before it parked: the caller resumes at once.
        mutating func park(_ id: UInt64, _ continuation: CheckedContinuation<Void, Never>) -> Bool {
            switch waiters[id] {
            case .registered:
                waiters[id] = .parked(continuation)
                return false
            case .released, .parked, nil:
                waiters[id] = nil
                return true
            }
        }

        mutating func cancel(_ id: UInt64) -> CheckedContinuation<Void, Never>? {
            switch waiters[id] {
            case .parked(let continuation):
                waiters[id] = nil
                return continuation
            case .registered:
                waiters[id] = .released
                return nil
            case .released, nil:
                return nil
            }
        }

        mutating func signal() -> [CheckedContinuation<Void, Never>] {
            guard !waiters.isEmpty else {
                pending = true
                return []
            }
            var resumed: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in waiters {
                switch waiter {
                case .parked(let continuation):
                    resumed.append(continuation)
                    waiters[id] = nil
                case .registered:
                    waiters[id] = .released
                case .released:
                    break
                }
            }
            return resumed
        }
    }
}
