import Foundation
import Hummingbird
import NIOCore
import PaywireModels

/// The one way a Paywire service answers with JSON: a `JSONValue`, a `Codable` answer, or bytes
/// that are JSON already (passed on from another service), encoded like every other document.
public struct JSONResponse: ResponseGenerator {
    let status: HTTPResponse.Status
    let body: () throws -> ByteBuffer

    public init(_ value: JSONValue, status: HTTPResponse.Status = .ok) {
        self.init(encoding: value, status: status)
    }

    public init<Value: Encodable>(encoding value: Value, status: HTTPResponse.Status = .ok) {
        self.status = status
        body = { ByteBuffer(bytes: try PaywireJSON.encoder.encode(value)) }
    }

    /// Bytes that already are a JSON document.
    public init(json bytes: ByteBuffer, status: HTTPResponse.Status = .ok) {
        self.status = status
        body = { bytes }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try response()
    }

    public func response() throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: try body()))
    }
}
