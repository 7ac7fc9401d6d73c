import Hummingbird
import NIOCore
import PaywireModels

/// Every error an HTTP client sees: `{"error": {"type", "code", "message", "field"}}` with the
/// field at fault where there is one. Messages describe the problem, never echo secrets.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var type: String
    public var code: String
    public var message: String
    public var field: String?
    /// Seconds a client should wait before trying again (`Retry-After`), for faults of ours.
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, type: String, code: String, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    public static func invalid(_ field: String, _ message: String, code: String = "IR_06") -> APIError {
        APIError(status: .badRequest, type: "invalid_request", code: code, message: message, field: field)
    }

    public static func unauthorized(_ message: String = "API key not provided or invalid") -> APIError {
        APIError(status: .unauthorized, type: "invalid_request", code: "IR_01", message: message, field: "api-key")
    }

    public static func notFound(_ what: String) -> APIError {
        APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "\(what) does not exist")
    }

    /// A fault of ours that passes (a database or broker away for a moment): 503 with
    /// `Retry-After`, never a 4xx that blames the client or a bare 500.
    public static func unavailable(_ message: String, retryAfter: Int = 1) -> APIError {
        APIError(status: .serviceUnavailable, type: "server_not_available", code: "HE_00", message: message, retryAfter: retryAfter)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: [String: JSONValue] = [
            "type": .string(type), "code": .string(code), "message": .string(message),
        ]
        error["field"] = field.map(JSONValue.string) ?? .null
        var response = try JSONResponse(.object(["error": .object(error)]), status: status).response()
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}
