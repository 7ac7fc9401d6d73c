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

    /// The object, nil for 404; payment-core unreachable or failing is 503 to the client.
    func object(_ path: String) async throws -> JSONValue? {
        let answer: (status: Int, body: NIOCore.ByteBuffer)
        do {
            answer = try await api.send(method: .GET, path: path, timeout: .seconds(5))
        } catch {
            logger.warning("payment-core not reachable", metadata: ["error": .string(String(describing: type(of: error)))])
            throw APIError.unavailable("Payments cannot be read now; retry later")
        }
        switch answer.status {
        case 200: return try PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: answer.body))
        // 400: an id payment-core cannot even look up (odd bytes a client sent) names nothing.
        case 400, 404: return nil
        default:
            logger.warning("payment-core answered a read with an error", metadata: ["status": .stringConvertible(answer.status)])
            throw APIError.unavailable("Payments cannot be read now; retry later")
        }
    }
}
