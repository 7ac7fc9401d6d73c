import Foundation
import Hummingbird
import NIOCore
import PaywireModels
import PaywireStore
import PostgresNIO

/// Turns anything that is not already an HTTP error into a JSON answer, so no client ever sees a
/// bare error page: a fault of ours that passes (PostgreSQL or Kafka away, a dependency
/// unavailable) is a 503 with `Retry-After`, what PostgreSQL refuses in the client's data a 4xx,
/// Hummingbird's own errors their status, and anything else a 500.
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
        } catch let error where Self.storeRefusal(error) != nil {
            // What PostgreSQL refuses because of what the client sent (a duplicate, data it
            // cannot hold) is the client's 4xx, never a 500; handlers name the field where they can.
            throw Self.storeRefusal(error)!
        } catch let error where MessageFailure.classify(error) == .transient {
            context.logger.warning("request failed on a fault that passes; answered 503", metadata: ["error": .string(MessageFailure.loggable(error))])
            throw APIError.unavailable("The service is briefly unavailable; retry (with the same Idempotency-Key for payments)")
        } catch {
            context.logger.error("unhandled error", metadata: ["error": .string(String(describing: type(of: error)))])
            throw APIError(status: .internalServerError, type: "api", code: "HE_00", message: "Something went wrong", field: nil)
        }
    }

    static func storeRefusal(_ error: any Error) -> APIError? {
        var error = error
        if let wrapped = error as? PostgresTransactionError, let inner = wrapped.closureError ?? wrapped.commitError { error = inner }
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else { return nil }
        switch state {
        case "23505":
            return APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "This conflicts with an existing resource", field: nil)
        case _ where state.hasPrefix("22"):
            return APIError(status: .badRequest, type: "invalid_request", code: "IR_06", message: "The request holds data that cannot be stored (SQLSTATE \(state))", field: nil)
        default:
            return nil
        }
    }
}
