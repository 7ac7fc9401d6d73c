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

    public var isRunning: Bool { process.isRunning }

    /// SIGTERM, then waits; returns the exit status (nil if it had to be killed).
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) async -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// As an operator's kill -9 would.
    public func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
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
