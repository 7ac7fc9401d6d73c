import Foundation
import Hummingbird
import NIOCore
import PaywireModels
import PostgresNIO

/// Decodes a JSON request body, turning every decoding failure into a 400 that names the field.
public enum JSONBody {
    public static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(status: .contentTooLarge, type: "invalid_request", code: "IR_40", message: "The request body is larger than \(context.maxUploadSize) bytes", field: nil)
        }
        do {
            return try PaywireJSON.decoder.decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw APIError.invalid("body", "is not valid JSON")
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return text.isEmpty ? "body" : text
    }

    public static func describe(_ error: DecodingError) -> APIError {
        switch error {
        case .keyNotFound(let key, let context):
            return .invalid(path(context.codingPath + [key]), "is required", code: "IR_05")
        case .typeMismatch(let type, let context):
            return .invalid(path(context.codingPath), "must be of type \(jsonTypeName(type))", code: "IR_06")
        case .valueNotFound(let type, let context):
            return .invalid(path(context.codingPath), "must be of type \(jsonTypeName(type)), not null", code: "IR_06")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return .invalid("body", "is not valid JSON") }
            return .invalid(path(context.codingPath), context.debugDescription, code: "IR_06")
        @unknown default:
            return .invalid("body", "could not be decoded")
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "string"
        case is Int.Type, is Int64.Type, is Int32.Type: return "integer"
        case is Double.Type: return "number"
        case is Bool.Type: return "boolean"
        default:
            let name = String(describing: type)
            return name.hasPrefix("Array") ? "array" : name.hasPrefix("Dictionary") ? "object" : "object"
        }
    }
}

/// Turns anything that is not already an HTTP error into a JSON 500 (or the matching status for
/// Hummingbird's own errors), so no client ever sees a bare error page.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as PostgresTransactionError where error.closureError is APIError {
            // A refusal raised inside a transaction: the transaction rolled back, the client
            // gets the refusal.
            throw error.closureError as! APIError
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "HE_02" : "IR_00"
            throw APIError(status: error.status, type: "invalid_request", code: code, message: error.status == .notFound ? "Unrecognized request URL" : (error.body ?? error.status.reasonPhrase), field: nil)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": .string(String(describing: type(of: error)))])
            throw APIError(status: .internalServerError, type: "api", code: "HE_00", message: "Something went wrong", field: nil)
        }
    }
}
