import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PaywireModels

/// Calls another Paywire service's internal API, every request signed by `InternalAPISigner`
/// (the receiving side checks it with `InternalAPIAuthenticationMiddleware`). Paths are sent as
/// given, so the caller escapes each segment (`StrictPercentEncoding`) before signing.
public struct InternalAPIClient: Sendable {
    public let baseURL: String
    let signer: InternalAPISigner
    let http: HTTPClient

    public init(baseURL: String, signer: InternalAPISigner, http: HTTPClient) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.signer = signer
        self.http = http
    }

    /// The status and body of the answer; throws when there is none (connection refused, timeout).
    public func send(method: HTTPMethod, path: String, body: ByteBuffer = ByteBuffer(), timeout: Duration, maxBytes: Int = 8 << 20) async throws -> (status: Int, body: ByteBuffer) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in signer.headers(method: method.rawValue, pathAndQuery: path, body: body.readableBytesView) {
            request.headers.add(name: name, value: value)
        }
        if method == .POST {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await http.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
        return (Int(response.status.code), try await response.body.collect(upTo: maxBytes))
    }

    /// A JSON object the other service owns, nil when it has none by that id (404, or 400 for an
    /// id it cannot even look up); the service unreachable or failing is 503 for our client,
    /// `unavailable` telling what cannot be read now.
    public func object(_ path: String, method: HTTPMethod = .GET, body: ByteBuffer = ByteBuffer(), unavailable: String, logger: Logger) async throws -> JSONValue? {
        let answer: (status: Int, body: ByteBuffer)
        do {
            answer = try await send(method: method, path: path, body: body, timeout: .seconds(5))
        } catch {
            logger.warning("internal API not reachable", metadata: ["base_url": .string(baseURL), "error": .string(String(describing: type(of: error)))])
            throw APIError.unavailable(unavailable)
        }
        switch answer.status {
        case 200: return try PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: answer.body))
        case 400, 404: return nil
        default:
            logger.warning("internal API answered a read with an error", metadata: ["base_url": .string(baseURL), "status": .stringConvertible(answer.status)])
            throw APIError.unavailable(unavailable)
        }
    }
}
