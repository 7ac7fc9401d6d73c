import AsyncHTTPClient
import Foundation

/// A Paywire service as a child process of a benchmark: started and waited for (`/ready`),
/// killed with SIGKILL, its resident memory read. It dies with the benchmark
/// (`PAYWIRE_EXIT_WITH_PARENT`).
public final class ServiceProcess: @unchecked Sendable {
    public let path: String
    public let environment: [String: String]
    public let port: Int
    var process: Process?

    public init(path: String, port: Int, environment: [String: String]) {
        self.path = path
        self.port = port
        var full = ProcessInfo.processInfo.environment
        full.merge(environment) { _, new in new }
        full["HTTP_PORT"] = String(port)
        full["PAYWIRE_EXIT_WITH_PARENT"] = "1"
        self.environment = full
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.environment = environment
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        try await Bench.waitUntil(timeout: .seconds(60)) {
            guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(self.baseURL)/ready"), timeout: .seconds(2)) else { return false }
            return response.status == .ok
        }
    }

    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public func residentKiB() -> Int {
        guard let pid = process?.processIdentifier, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}
