import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywireModels
import PaywireRuntime
import Synchronization

/// The console reads and changes everything through the gateway's own public API, in-process:
/// the request goes through the same key check, route groups and handlers as one from `curl`, so
/// the console can show or do nothing the session's key could not, and another merchant's ids
/// answer 404 exactly as they do in the API.
struct ConsoleAPIClient: Sendable {
    /// The public routes only (built before the console's own were added).
    let responder: RouterResponder<PaywireRequestContext>

    /// An API answer: its status and its JSON (nil when the body is not JSON).
    struct Answer: Sendable {
        var status: Int
        var json: JSONValue?

        var isSuccess: Bool { (200..<300).contains(status) }

        /// The API's own error message, for the page (it never holds a secret).
        var errorMessage: String {
            guard case .object(let body) = json, case .object(let error)? = body["error"] else { return "The request failed (HTTP \(status))" }
            let message = error["message"]?.stringValue ?? "The request failed"
            if let field = error["field"]?.stringValue { return "\(field): \(message)" }
            return message
        }
    }

    func get(_ path: String, key: String, context: PaywireRequestContext) async throws -> Answer {
        try await send(.get, path, key: key, body: nil, context: context)
    }

    func post(_ path: String, key: String, body: JSONValue? = nil, context: PaywireRequestContext) async throws -> Answer {
        try await send(.post, path, key: key, body: body ?? .object([:]), context: context)
    }

    func delete(_ path: String, key: String, context: PaywireRequestContext) async throws -> Answer {
        try await send(.delete, path, key: key, body: nil, context: context)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, key: String, body: JSONValue?, headers: [String: String] = [:], context: PaywireRequestContext) async throws -> Answer {
        var fields = HTTPFields()
        fields[.init("api-key")!] = key
        for (name, value) in headers { fields[.init(name)!] = value }
        var buffer = ByteBuffer()
        if let body {
            fields[.contentType] = "application/json"
            buffer = ByteBuffer(data: try PaywireJSON.encoder.encode(body))
        }
        let request = Request(head: HTTPRequest(method: method, scheme: "http", authority: "console", path: path, headerFields: fields), body: RequestBody(buffer: buffer))
        let response = try await responder.respond(to: request, context: context.sibling)
        let collected = Collected()
        try await response.body.write(CollectingWriter(collected: collected))
        let bytes = collected.buffer.withLock { $0 }
        let json = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: bytes))
        return Answer(status: Int(response.status.code), json: json)
    }

    final class Collected: Sendable {
        let buffer = Mutex(ByteBuffer())
    }

    /// Keeps what a response body writes; API answers are small JSON documents.
    struct CollectingWriter: ResponseBodyWriter {
        let collected: Collected

        mutating func write(_ buffer: ByteBuffer) async throws {
            collected.buffer.withLock { $0.writeImmutableBuffer(buffer) }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
