import Foundation
import PaywireModels

/// A dispute as payment-core keeps it, and the object it answers and publishes (Hyperswitch's
/// `DisputeResponse`: `amount` a string of minor units, times in RFC 3339).
struct DisputeRecord: Sendable, Equatable {
    var disputeId: String
    var merchantId: String
    var profileId: String?
    var paymentId: String
    var attemptId: String
    var merchantConnectorId: String
    var connector: String
    var connectorDisputeId: String
    var amount: Int
    var currency: String
    var stage: DisputeStage
    var status: DisputeStatus
    var connectorStatus: String
    var connectorReason: String?
    var connectorReasonCode: String?
    var challengeRequiredBy: Date?
    var connectorCreatedAt: Date?
    var connectorUpdatedAt: Date?
    var createdAt: Date

    var object: JSONValue {
        func date(_ value: Date?) -> JSONValue { value.map { .string(PaywireJSON.format($0)) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return .object([
            "dispute_id": .string(disputeId), "merchant_id": .string(merchantId), "profile_id": text(profileId),
            "payment_id": .string(paymentId), "attempt_id": .string(attemptId),
            "merchant_connector_id": .string(merchantConnectorId), "connector": .string(connector), "connector_dispute_id": .string(connectorDisputeId),
            "amount": .string(String(amount)), "currency": .string(currency),
            "dispute_stage": .string(stage.rawValue), "dispute_status": .string(status.rawValue),
            "connector_status": .string(connectorStatus), "connector_reason": text(connectorReason), "connector_reason_code": text(connectorReasonCode),
            "challenge_required_by": date(challengeRequiredBy), "connector_created_at": date(connectorCreatedAt), "connector_updated_at": date(connectorUpdatedAt),
            "created_at": date(createdAt), "is_already_refunded": .bool(false),
        ])
    }

    init(disputeId: String, merchantId: String, profileId: String?, paymentId: String, attemptId: String, merchantConnectorId: String, connector: String,
         report: DisputeReport, createdAt: Date) {
        self.disputeId = disputeId
        self.merchantId = merchantId
        self.profileId = profileId
        self.paymentId = paymentId
        self.attemptId = attemptId
        self.merchantConnectorId = merchantConnectorId
        self.connector = connector
        connectorDisputeId = report.connectorDisputeId
        amount = report.amount
        currency = report.currency
        stage = report.stage
        status = report.status ?? .opened
        connectorStatus = report.connectorStatus
        connectorReason = report.connectorReason
        connectorReasonCode = report.connectorReasonCode
        challengeRequiredBy = report.challengeRequiredBy
        connectorCreatedAt = report.connectorCreatedAt
        connectorUpdatedAt = report.connectorUpdatedAt
        self.createdAt = createdAt
    }

    /// Read back from the stored object.
    init?(object: JSONValue) {
        func date(_ key: String) -> Date? { object[key]?.stringValue.flatMap(PaywireJSON.parse) }
        guard let disputeId = object["dispute_id"]?.stringValue, let merchantId = object["merchant_id"]?.stringValue,
              let paymentId = object["payment_id"]?.stringValue, let attemptId = object["attempt_id"]?.stringValue,
              let merchantConnectorId = object["merchant_connector_id"]?.stringValue, let connector = object["connector"]?.stringValue,
              let connectorDisputeId = object["connector_dispute_id"]?.stringValue, let amount = object["amount"]?.stringValue.flatMap({ Int($0) }),
              let currency = object["currency"]?.stringValue, let stage = object["dispute_stage"]?.stringValue.flatMap(DisputeStage.init(rawValue:)),
              let status = object["dispute_status"]?.stringValue.flatMap(DisputeStatus.init(rawValue:)), let createdAt = date("created_at") else { return nil }
        self.disputeId = disputeId
        self.merchantId = merchantId
        profileId = object["profile_id"]?.stringValue
        self.paymentId = paymentId
        self.attemptId = attemptId
        self.merchantConnectorId = merchantConnectorId
        self.connector = connector
        self.connectorDisputeId = connectorDisputeId
        self.amount = amount
        self.currency = currency
        self.stage = stage
        self.status = status
        connectorStatus = object["connector_status"]?.stringValue ?? ""
        connectorReason = object["connector_reason"]?.stringValue
        connectorReasonCode = object["connector_reason_code"]?.stringValue
        challengeRequiredBy = date("challenge_required_by")
        connectorCreatedAt = date("connector_created_at")
        connectorUpdatedAt = date("connector_updated_at")
        self.createdAt = createdAt
    }
}
