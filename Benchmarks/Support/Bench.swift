import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO

/// What every benchmark needs: durations in seconds, waiting for a condition (never a fixed
/// sleep), a PostgreSQL client from a URL, and the gateway's admin API.
public enum Bench {
    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// A line on standard output at once (print's buffer, with output to a file or pipe, would
    /// hold a round's figures until the benchmark exits).
    public static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// `every`: how often the condition is asked (a count over a large table is not free).
    public static func waitUntil(timeout: Duration, every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: interval)
        }
        throw ValidationError("timed out after \(timeout)")
    }

    public static func postgresConfiguration(_ url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let host = components.host else { throw ValidationError("bad --database-url") }
        return PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: components.user ?? "paywire",
                                            password: components.password, database: String(components.path.dropFirst()), tls: .disable)
    }

    /// Calls the gateway with an API key; returns the body, or throws naming the path and answer.
    public static func call(_ gateway: String, _ method: HTTPMethod, _ path: String, apiKey: String?, body: String?, headers: [(String, String)] = [], timeout: Duration = .seconds(60)) async throws -> String {
        var request = HTTPClientRequest(url: gateway + path)
        request.method = method
        if let apiKey { request.headers.add(name: "api-key", value: apiKey) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .init(timeout))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code < 300 else { throw ValidationError("\(path): \(response.status.code) \(String(buffer: bytes))") }
        return String(buffer: bytes)
    }

    public static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}
