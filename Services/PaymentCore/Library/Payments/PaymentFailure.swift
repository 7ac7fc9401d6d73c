import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO
/// A command that cannot be carried out as asked; it goes back to the client as a 4xx.
struct PaymentFailure: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    var field: String?

    static func invalid(_ field: String?, _ message: String, code: String = "IR_06") -> PaymentFailure {
        PaymentFailure(status: 400, code: code, message: message, field: field)
    }

    static func notFound(_ what: String) -> PaymentFailure {
        PaymentFailure(status: 404, code: "HE_02", message: "\(what) does not exist")
    }

    static func invalidState(_ action: String, _ status: PaymentStatus) -> PaymentFailure {
        PaymentFailure(status: 400, code: "IR_16", message: "You cannot \(action) this payment because it has status \(status.rawValue)")
    }

    var reply: GatewayReply.Failure { GatewayReply.Failure(status: status, code: code, message: message, field: field) }
}
