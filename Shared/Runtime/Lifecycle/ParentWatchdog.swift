import Foundation

/// With `PAYWIRE_EXIT_WITH_PARENT=1` a process sends itself SIGTERM when the process that started
/// it is gone, so services started by a test run or a script never outlive it.
public enum ParentWatchdog {
    /// How long the graceful stop may take once the parent is gone.
    static let graceSeconds = 30

    public static func startIfRequested(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard environment["PAYWIRE_EXIT_WITH_PARENT"] == "1" else { return }
        let parent = getppid()
        let thread = Thread {
            while getppid() == parent { sleep(1) }
            kill(getpid(), SIGTERM)
            // A graceful stop can wait on what went with the parent (a test run's PostgreSQL and
            // broker): services orphaned by a crashed test run were found still waiting an hour
            // later. Nothing is left to hand work to, so the process ends regardless.
            sleep(UInt32(graceSeconds))
            fflush(nil)
            _exit(1)
        }
        thread.name = "paywire-parent-watchdog"
        thread.start()
    }
}
