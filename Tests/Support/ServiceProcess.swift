import Foundation
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
    /// A port the kernel just handed out and released; good enough for loopback tests.
    public static func next() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw MissingTestService(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
