import Foundation
import Synchronization
import Logging

/// A Paywire executable started as a child process for end-to-end tests. It is told to exit with
/// its parent, and `stop()` sends SIGTERM (then SIGKILL after a grace period).
public final class ServiceProcess: @unchecked Sendable {
    public let name: String
    public let process: Process
    public let logFile: URL

    public init(executable: String, arguments: [String] = [], environment: [String: String], logDirectory: URL) throws {
        guard let bin = TestEnvironment.binPath else {
            throw MissingTestService(description: "PAYWIRE_TEST_BIN is not set: run ./scripts/test")
        }
        name = executable
        process = Process()
        process.executableURL = URL(fileURLWithPath: bin).appendingPathComponent(executable)
        process.arguments = arguments
        var full = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PAYWIRE_TEST") }
        full.merge(environment) { _, new in new }
        // Tests run against the dev broker (librdkafka's mock cluster), which answers an empty
        // fetch only after the whole wait: a short one keeps request round trips fast.
        if full["KAFKA_FETCH_WAIT_MAX_MS"] == nil { full["KAFKA_FETCH_WAIT_MAX_MS"] = "5" }
        full["PAYWIRE_EXIT_WITH_PARENT"] = "1"
        process.environment = full
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        logFile = logDirectory.appendingPathComponent("\(executable)-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Whether the process still runs, as the kernel says (Foundation's `isRunning` lags until it
    /// has reaped the child).
    public var isRunning: Bool { Self.isAlive(process.processIdentifier) }

    /// The exit status once Foundation has reaped the process (a little after `isRunning` turns
    /// false); nil before.
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// SIGTERM, then waits; returns the exit status (nil if it had to be killed, or if Foundation
    /// has not recorded it yet).
    ///
    /// Nothing here blocks a thread: Foundation reaps children from a handler that needs a thread
    /// of the same global pool the tests run on, so tests blocked in `waitUntilExit()` (one per
    /// stack stopping at once on a loaded machine) can leave that handler no thread, and then
    /// no child is ever reaped and every test waits for ever. The kernel's view (`isAlive`) says
    /// when the process has ended; Foundation's status is read only once it has it.
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) async -> Int32? {
        let pid = process.processIdentifier
        if Self.isAlive(pid) {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while Self.isAlive(pid) && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if Self.isAlive(pid) {
                kill(pid, SIGKILL)
                await Self.waitUntilEnded(pid)
                return nil
            }
        }
        let recorded = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < recorded { try? await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// As an operator's kill -9 would: returns once the kernel has ended the process (its ports
    /// are free), without waiting for Foundation to reap it.
    public func crash() {
        let pid = process.processIdentifier
        guard Self.isAlive(pid) else { return }
        kill(pid, SIGKILL)
        // SIGKILL ends a process within milliseconds; a bounded wait in small steps.
        for _ in 0..<2_000 where Self.isAlive(pid) { usleep(5_000) }
    }

    static func waitUntilEnded(_ pid: Int32) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while isAlive(pid) && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Whether the kernel still runs `pid`: false once it has exited (a zombie waiting to be
    /// reaped counts as ended) or is gone.
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != "Z" && state != "X" && state != nil
    }

    public func logTail(lines: Int = 30) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

public enum FreePort {
    /// Ports are handed out from below the kernel's ephemeral range: a port taken from inside it
    /// (bind to 0, release) can be taken again by any outgoing connection — to PostgreSQL, the
    /// broker, a webhook receiver — before the service binds it ("Address already in use"). Each
    /// port is handed out once per test process and checked free before it is.
    static let range: Range<Int> = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let ephemeralLow = bounds.first ?? 32768
        let ephemeralHigh = bounds.count > 1 ? bounds[1] : 60999
        if ephemeralLow >= 12000 { return 10000..<ephemeralLow }
        return (ephemeralHigh + 1)..<65536
    }()

    private static let nextCandidate = Mutex(Int.random(in: 0..<1000))

    public static func next() throws -> Int {
        for _ in 0..<range.count {
            let candidate = nextCandidate.withLock { offset -> Int in
                defer { offset += 1 }
                return range.lowerBound + offset % range.count
            }
            if isFree(candidate) { return candidate }
        }
        throw MissingTestService(description: "no free port in \(range)")
    }

    /// Whether a listener could bind the port on loopback now.
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
