import Foundation

/// With `PAYWIRE_EXIT_WITH_PARENT=1` a process sends itself SIGTERM when the process that started
/// it is gone, so services started by a test run or a script never outlive it.
public enum ParentWatchdog {
    public static func startIfRequested(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard environment["PAYWIRE_EXIT_WITH_PARENT"] == "1" else { return }
        let parent = getppid()
        let thread = Thread {
            while getppid() == parent { sleep(1) }
            kill(getpid(), SIGTERM)
        }
        thread.name = "paywire-parent-watchdog"
        thread.start()
    }
}
