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

    public init(status: HTTPResponse.Status, type: String, code: String, message: String, field: String? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.field = field
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

    public static func unavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, type: "server_not_available", code: "HE_00", message: message)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: [String: JSONValue] = [
            "type": .string(type), "code": .string(code), "message": .string(message),
        ]
        error["field"] = field.map(JSONValue.string) ?? .null
        return try JSONResponse(.object(["error": .object(error)]), status: status).response()
    }
}
