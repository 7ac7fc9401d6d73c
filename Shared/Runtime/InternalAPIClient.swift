import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

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
}
