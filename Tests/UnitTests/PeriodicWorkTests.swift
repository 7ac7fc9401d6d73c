@testable import PaywireStore
import PaywireTestSupport
import Testing

/// The wake-up every idle loop sleeps on, and the periodic-work type built on it. Intervals here
/// are ten minutes: anything that finishes did so because it was woken, not because time passed
/// (a broken wake-up runs into the time limit).
@Suite(.timeLimit(.minutes(1)))
struct PeriodicWorkTests {
    @Test func aSignalEndsTheWaitUnderWayOrTheNextOneAndNeverAFollowingOne() async throws {
        let signal = WakeSignal()
        // Before anyone waits: the next wait returns at once.
        signal.signal()
        await signal.wait(upTo: .seconds(600))
        // While one waits.
        let waiting = Task { await signal.wait(upTo: .seconds(600)) }
        signal.signal()
        await waiting.value
        // Several signals fold into one: the wait after that one times out.
        signal.signal()
        signal.signal()
        await signal.wait(upTo: .seconds(600))
        let start = ContinuousClock.now
        await signal.wait(upTo: .milliseconds(50))
        #expect(ContinuousClock.now - start >= .milliseconds(50), "a folded signal woke a second wait")
    }

    /// The window a lost wake-up once hid in: a signal after the wait found none pending and
    /// before it registered (the delivery recorder then slept its whole minute with an outcome
    /// in hand, and the stack could not come to rest).
    @Test func aSignalBetweenTheCheckAndTheRegistrationIsNotLost() async {
        var state = WakeSignal.State()
        #expect(state.takePending() == false, "nothing pending: the wait goes on to register")
        #expect(state.signal().isEmpty, "nobody registered yet: the signal is remembered")
        let id = state.register()
        var resumedAtOnce = false
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            resumedAtOnce = state.park(id, continuation)
            // Released at once, the waiter resumes itself (as `WakeSignal` does); parked, it is
            // taken back here so the test ends either way.
            if resumedAtOnce { continuation.resume() } else { state.cancel(id)?.resume() }
        }
        #expect(resumedAtOnce, "the remembered signal released the waiter")
    }

    @Test func cancellingAWaiterEndsItsWait() async throws {
        let signal = WakeSignal()
        let waiting = Task { await signal.wait(upTo: .seconds(600)) }
        waiting.cancel()
        await waiting.value
        // The cancelled waiter left nothing behind: a signal now is kept for the next wait.
        signal.signal()
        await signal.wait(upTo: .seconds(600))
    }

    @Test func passesRunAgainAtOnceWhileThereIsMoreAndWhenWokenOtherwiseTheyWait() async throws {
        let wake = WakeSignal()
        let passes = Collector<Int>()
        let work = PeriodicWork(name: "test", interval: .seconds(600), wake: wake, logger: TestEnvironment.logger("periodic", level: .critical)) {
            passes.append(passes.count + 1)
            // Three passes with more to do, then idle.
            return passes.count < 3 ? .now : .idle
        }
        let running = Task { try await work.run() }
        #expect(await eventually(timeout: .seconds(30)) { passes.count == 3 })
        wake.signal()
        #expect(await eventually(timeout: .seconds(30)) { passes.count == 4 })
        running.cancel()
        try await running.value
        #expect(passes.count == 4, "an idle pass ran with nothing to wake it")
    }

    @Test func aFailedPassIsTriedAgainAfterTheErrorPause() async throws {
        struct Failure: Error {}
        let passes = Collector<Int>()
        let work = PeriodicWork(name: "test", interval: .seconds(600), logger: TestEnvironment.logger("periodic", level: .critical),
                                errorPause: .milliseconds(10)) {
            passes.append(passes.count)
            if passes.count < 3 { throw Failure() }
            return .idle
        }
        let running = Task { try await work.run() }
        #expect(await eventually(timeout: .seconds(30)) { passes.count == 3 })
        running.cancel()
        try await running.value
    }

    @Test func theNextDueTimeAPassNamesIsWhenTheNextPassRuns() async throws {
        let passes = Collector<Int>()
        let work = PeriodicWork(name: "test", interval: .seconds(600), logger: TestEnvironment.logger("periodic", level: .critical)) {
            passes.append(passes.count)
            return passes.count < 3 ? .after(.milliseconds(20)) : .idle
        }
        let running = Task { try await work.run() }
        #expect(await eventually(timeout: .seconds(30)) { passes.count == 3 })
        running.cancel()
        try await running.value
    }
}
