import Foundation
import Hummingbird
import NIOCore
import PaywireModels
import PostgresNIO

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
