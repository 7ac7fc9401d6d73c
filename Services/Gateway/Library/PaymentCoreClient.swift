import Foundation
import NIOCore
import Logging
import PaywireModels
import PaywireRuntime

/// Payments and refunds as payment-core holds them, asked of its internal API (signed): the
/// gateway keeps no copy and reads no table of payment-core's.
struct PaymentCoreClient: Sendable {
    let api: InternalAPIClient
    let logger: Logger

    func payment(_ paymentId: String) async throws -> JSONValue? {
        try await object("/internal/payments/" + StrictPercentEncoding.encode(paymentId))
    }

    func refund(_ refundId: String) async throws -> JSONValue? {
        try await object("/internal/refunds/" + StrictPercentEncoding.encode(refundId))
    }

    /// A list (`PaymentListQuery`, `RefundListQuery`) as payment-core answers it.
    func list(_ path: String, _ query: some Encodable) async throws -> JSONValue {
        let body = ByteBuffer(bytes: try PaywireJSON.encoder.encode(query))
        guard let answer = try await api.object(path, method: .POST, body: body, unavailable: "Payments cannot be listed now; retry later", logger: logger) else {
            throw APIError.unavailable("Payments cannot be listed now; retry later")
        }
        return answer
    }

    func object(_ path: String) async throws -> JSONValue? {
        try await api.object(path, unavailable: "Payments cannot be read now; retry later", logger: logger)
    }
}
