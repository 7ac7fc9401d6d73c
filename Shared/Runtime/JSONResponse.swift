import Foundation
import Hummingbird
import NIOCore
import PaywireModels

/// A JSON answer built from `JSONValue`, encoded like every other Paywire document.
public struct JSONResponse: ResponseGenerator {
    let value: JSONValue
    let status: HTTPResponse.Status

    public init(_ value: JSONValue, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try PaywireJSON.encoder.encode(value))))
    }
}
