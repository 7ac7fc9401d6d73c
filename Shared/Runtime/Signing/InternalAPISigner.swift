import Crypto
import Foundation
import PaywireModels
import Hummingbird
import NIOCore

/// Authenticates requests one Paywire service forwards to another's internal API (the gateway
/// passing a merchant's events-log call to the dispatcher). Covers the method, the path with its
/// query, a timestamp and a digest of the body, so a captured request can be neither altered nor
/// replayed after `tolerance`.
public struct InternalAPISigner: Sendable {
    public static let signatureHeader = "x-paywire-internal-api-signature"
    public static let timestampHeader = "x-paywire-internal-api-timestamp"
    public let tolerance: TimeInterval = 300
    private let scheme: SignatureScheme

    public init(encryptionKey base64Key: String) throws {
        scheme = try SignatureScheme(purpose: "paywire internal api v1", encryptionKey: base64Key)
    }

    static func covered(method: String, pathAndQuery: String, timestamp: Int, body: some Sequence<UInt8>) -> Data {
        let digest = Hex.encode(SHA256.hash(data: Data(body)))
        return Data("\(method.uppercased())\n\(pathAndQuery)\n\(timestamp)\n\(digest)".utf8)
    }

    /// The two headers to send with a request.
    public func headers(method: String, pathAndQuery: String, body: some Sequence<UInt8>, now: Date = Date()) -> [(String, String)] {
        let signed = scheme.timestamped(now: now) { Self.covered(method: method, pathAndQuery: pathAndQuery, timestamp: $0, body: body) }
        return [(Self.timestampHeader, signed.timestamp), (Self.signatureHeader, signed.signature)]
    }

    public func isValid(signature: String?, timestamp: String?, method: String, pathAndQuery: String, body: some Sequence<UInt8>, now: Date = Date()) -> Bool {
        scheme.isValid(signature, timestamp: timestamp, tolerance: tolerance, now: now) {
            Self.covered(method: method, pathAndQuery: pathAndQuery, timestamp: $0, body: body)
        }
    }
}

/// Lets through only requests signed by `InternalAPISigner`; anything else is 401 with no hint.
public struct InternalAPIAuthenticationMiddleware: RouterMiddleware {
    public typealias Context = PaywireRequestContext
    let signer: InternalAPISigner

    public init(signer: InternalAPISigner) { self.signer = signer }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        // Internal bodies are small; collecting here lets the handler read the same bytes.
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        guard signer.isValid(
            signature: request.headers[.init(InternalAPISigner.signatureHeader)!],
            timestamp: request.headers[.init(InternalAPISigner.timestampHeader)!],
            method: request.method.rawValue, pathAndQuery: request.uri.description, body: body.readableBytesView
        ) else {
            throw APIError(status: .unauthorized, type: "invalid_request", code: "IR_01", message: "Internal API request not signed", field: nil)
        }
        return try await next(request, context)
    }
}
