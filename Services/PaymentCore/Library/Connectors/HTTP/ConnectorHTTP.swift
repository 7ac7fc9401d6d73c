import AsyncHTTPClient
import Foundation
import Tracing
import NIOCore
import NIOHTTP1
import PaywireModels

/// A request to a processor as a connector builds it — no I/O yet, so building is testable.
public struct ConnectorHTTPRequest: Sendable, Equatable {
    public var method: HTTPMethod
    public var path: String
    public var headers: [String: String]
    /// Form fields in order (`application/x-www-form-urlencoded`), or nil for no body.
    public var form: [ConnectorFormField]?
    /// A JSON body (`application/json`), for processors that take JSON (Adyen).
    public var json: JSONValue?

    public init(method: HTTPMethod, path: String, headers: [String: String] = [:], form: [ConnectorFormField]? = nil, json: JSONValue? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.form = form
        self.json = json
    }

    /// Form bodies can hold card numbers: never print them.
    public var redactedDescription: String { "\(method.rawValue) \(path)" }
}

public struct ConnectorFormField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What came back: a status and a JSON body, or nothing usable (timeout, connection lost).
public enum ConnectorHTTPResponse: Sendable, Equatable {
    case answered(status: Int, body: JSONValue?)
    case noAnswer
}

/// The seed's ConnectorIntegration for processors spoken to over HTTP: for each call, the
/// connector builds the request and handles the response; `ConnectorHTTPExecutor` sends it.
public protocol HTTPConnectorIntegration: Sendable {
    associatedtype Call: Sendable
    associatedtype Outcome: Sendable
    func buildRequest(_ call: Call, credentials: ConnectorCredentials) -> ConnectorHTTPRequest
    func handleResponse(_ response: ConnectorHTTPResponse, to call: Call) -> Outcome
}

/// Sends connector requests: base URL, form encoding, one deadline per flow. It never retries
/// on its own — whether a call may be repeated is the connector's decision (idempotency keys).
public struct ConnectorHTTPExecutor: Sendable {
    let baseURL: String
    let http: HTTPClient
    /// The budget of one flow (authorize is two calls at Stripe): every call of the flow shares it.
    let timeout: Duration

    /// The instant a flow started now must be done by.
    public func deadline() -> ContinuousClock.Instant { .now + timeout }

    public init(baseURL: String, http: HTTPClient, timeout: Duration) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
        self.timeout = timeout
    }

    /// A call to another host of the same processor (Adyen's disputes live on `ca-test`, not
    /// `checkout-test`): same client and budget.
    public func on(baseURL: String) -> ConnectorHTTPExecutor {
        ConnectorHTTPExecutor(baseURL: baseURL, http: http, timeout: timeout)
    }

    /// Sends one call with what is left of the flow's budget (`deadline`); with nothing left the
    /// call is not sent at all, so a flow never outlives its budget and the caller's cap.
    public func execute(_ request: ConnectorHTTPRequest, deadline: ContinuousClock.Instant? = nil) async -> ConnectorHTTPResponse {
        let remaining = (deadline ?? self.deadline()) - .now
        guard remaining > .milliseconds(1) else { return .noAnswer }
        var outgoing = HTTPClientRequest(url: baseURL + request.path)
        outgoing.method = request.method
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let form = request.form {
            outgoing.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            outgoing.body = .bytes(ByteBuffer(string: Self.formEncode(form)))
        } else if let json = request.json, let data = try? PaywireJSON.encoder.encode(json) {
            outgoing.headers.add(name: "Content-Type", value: "application/json")
            outgoing.body = .bytes(ByteBuffer(bytes: data))
        }
        let budget = min(remaining, timeout)
        let nanoseconds = Int64(budget.components.seconds) * 1_000_000_000 + budget.components.attoseconds / 1_000_000_000
        // The connector call is a span of the payment's trace; the path names the processor's
        // objects, never a credential.
        return await withSpan("connector \(request.method.rawValue)", ofKind: .client) { span in
            span.attributes["server.address"] = URL(string: baseURL)?.host ?? baseURL
            span.attributes["http.request.method"] = request.method.rawValue
            span.attributes["url.path"] = String(request.path.split(separator: "?").first ?? "")
            do {
                let response = try await http.execute(outgoing, timeout: .nanoseconds(nanoseconds))
                let body = try await response.body.collect(upTo: 1 << 20)
                span.attributes["http.response.status_code"] = Int(response.status.code)
                if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
                return .answered(status: Int(response.status.code), body: try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: body)))
            } catch {
                span.setStatus(SpanStatus(code: .error, message: "no answer"))
                return .noAnswer
            }
        }
    }

    /// `application/x-www-form-urlencoded`, with bracket keys (`metadata[a]`) left readable.
    public static func formEncode(_ fields: [ConnectorFormField]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        var keyAllowed = allowed
        keyAllowed.insert(charactersIn: "[]")
        return fields.map { field in
            (field.name.addingPercentEncoding(withAllowedCharacters: keyAllowed) ?? field.name) + "=" + (field.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? field.value)
        }.joined(separator: "&")
    }
}
