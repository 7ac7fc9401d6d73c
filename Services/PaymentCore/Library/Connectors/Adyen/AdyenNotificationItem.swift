import Crypto
import Foundation
import PaywireModels

/// One `NotificationRequestItem` of an Adyen notification request: what it says, whether its
/// HMAC holds, and what it means for Paywire (Hyperswitch's mapping of event codes).
public struct AdyenNotificationItem: Sendable, Equatable {
    public var pspReference: String
    public var originalReference: String
    public var merchantAccountCode: String
    public var merchantReference: String
    public var value: Int
    public var currency: String
    public var eventCode: String
    public var success: Bool
    public var reason: String?
    public var eventDate: Date?
    public var additionalData: [String: String]

    /// The items of a notification request; a body that is not one is malformed.
    static func items(in body: [UInt8]) throws -> [AdyenNotificationItem] {
        guard let request = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(body)), case .array(let wrapped)? = request["notificationItems"], !wrapped.isEmpty else {
            throw IncomingWebhookError.malformed("an Adyen notification needs notificationItems")
        }
        return try wrapped.map { wrapper in
            guard let item = wrapper["NotificationRequestItem"], let psp = item["pspReference"]?.stringValue, let code = item["eventCode"]?.stringValue,
                  let success = item["success"]?.stringValue else {
                throw IncomingWebhookError.malformed("each NotificationRequestItem needs pspReference, eventCode and success")
            }
            var additional: [String: String] = [:]
            if case .object(let fields)? = item["additionalData"] {
                for (key, value) in fields {
                    switch value {
                    case .string(let text): additional[key] = text
                    case .number(let number): additional[key] = String(Int(number))
                    case .bool(let flag): additional[key] = String(flag)
                    default: continue
                    }
                }
            }
            return AdyenNotificationItem(
                pspReference: psp, originalReference: item["originalReference"]?.stringValue ?? "",
                merchantAccountCode: item["merchantAccountCode"]?.stringValue ?? "", merchantReference: item["merchantReference"]?.stringValue ?? "",
                value: item["amount"]?["value"]?.intValue ?? 0, currency: item["amount"]?["currency"]?.stringValue ?? "",
                eventCode: code, success: success == "true", reason: item["reason"]?.stringValue,
                eventDate: item["eventDate"]?.stringValue.flatMap(Self.date), additionalData: additional
            )
        }
    }

    /// Adyen's signed string: eight fields joined by colons, missing ones empty.
    public var signedString: String {
        [pspReference, originalReference, merchantAccountCode, merchantReference, String(value), currency, eventCode, success ? "true" : "false"].joined(separator: ":")
    }

    /// HMAC-SHA256 of `signedString` with the hex-decoded key, base64: what `hmacSignature` holds.
    public static func signature(of signed: String, key: [UInt8]) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }

    func hasValidSignature(key: [UInt8]) -> Bool {
        guard let given = additionalData["hmacSignature"], let bytes = Data(base64Encoded: given), bytes.count == 32 else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: Data(signedString.utf8), using: SymmetricKey(data: key))
    }

    /// What the item reports, or nil for codes Paywire does not act on (REPORT_AVAILABLE, …).
    var event: IncomingWebhookEvent? {
        let id = "\(pspReference):\(eventCode):\(success)"
        let failure = success ? nil : AdyenConnector.refusal(reason: reason ?? eventCode, code: additionalData["refusalReasonCode"] ?? "2",
                                                               raw: additionalData["refusalReasonRaw"], advice: additionalData["merchantAdviceCode"])
        switch eventCode {
        case "AUTHORISATION":
            // The payment is the one we named in `reference`; Adyen's id for it is this item's.
            let result = success
                ? ConnectorResult(status: .authorized, connectorTransactionId: pspReference, amountReceived: value)
                : ConnectorResult(status: .declined, connectorTransactionId: pspReference, error: failure)
            return IncomingWebhookEvent(connectorEventId: id, subject: .payment(
                connectorTransactionId: pspReference, attemptId: additionalData["metadata.attempt_id"], paymentId: merchantReference.nilIfEmpty, result: result
            ))
        case "CAPTURE", "CAPTURE_FAILED":
            let captured = eventCode == "CAPTURE" && success
            let result = captured
                ? ConnectorResult(status: .charged, connectorTransactionId: originalReference, amountReceived: value, modification: .capture)
                : ConnectorResult(status: .declined, connectorTransactionId: originalReference, error: failure ?? Self.modificationFailure("capture_failed", reason), modification: .capture)
            return paymentEvent(id, result)
        case "CANCELLATION":
            let result = success
                ? ConnectorResult(status: .voided, connectorTransactionId: originalReference, modification: .cancel)
                : ConnectorResult(status: .declined, connectorTransactionId: originalReference, error: Self.modificationFailure("cancel_failed", reason), modification: .cancel)
            return paymentEvent(id, result)
        case "TECHNICAL_CANCEL":
            // Our cancel by reference (the payment id) of an authorisation never answered. Its
            // `originalReference` is the payment's pspReference when Adyen had the payment.
            let original = originalReference.nilIfEmpty
            let result = success
                ? ConnectorResult(status: .voided, connectorTransactionId: original, modification: .technicalCancel)
                : ConnectorResult(status: .declined, connectorTransactionId: original, error: Self.modificationFailure("technical_cancel_failed", reason), modification: .technicalCancel)
            return IncomingWebhookEvent(connectorEventId: id, subject: .payment(connectorTransactionId: originalReference, attemptId: nil, paymentId: merchantReference.nilIfEmpty, result: result))
        case "REFUND", "REFUND_FAILED", "REFUND_REVERSED", "CANCEL_OR_REFUND":
            // A refund we asked for names its refund id as `merchantReference`. (A CANCEL_OR_REFUND
            // Paywire did not send names no refund of ours and is not applied.)
            let refunded = (eventCode == "REFUND" || eventCode == "CANCEL_OR_REFUND") && success
            let result = refunded
                ? ConnectorRefundResult(status: .succeeded, connectorRefundId: pspReference)
                : ConnectorRefundResult(status: .failed, connectorRefundId: pspReference, error: ConnectorDecline(
                    code: eventCode == "REFUND_REVERSED" ? "refund_reversed" : "refund_failed",
                    message: reason ?? "Adyen could not refund the payment", rawCode: eventCode, processorCode: eventCode, processorMessage: reason ?? eventCode))
            return IncomingWebhookEvent(connectorEventId: id, subject: .refund(connectorRefundId: pspReference, refundId: merchantReference.nilIfEmpty, result: result))
        default:
            guard let (stage, status) = Self.dispute(eventCode: eventCode, disputeStatus: additionalData["disputeStatus"]) else { return nil }
            return IncomingWebhookEvent(connectorEventId: id, subject: .dispute(DisputeReport(
                connectorDisputeId: pspReference, connectorTransactionId: originalReference, amount: value, currency: currency.uppercased(),
                stage: stage, status: status, connectorStatus: additionalData["disputeStatus"] ?? eventCode,
                connectorReason: reason, connectorReasonCode: additionalData["chargebackReasonCode"],
                challengeRequiredBy: additionalData["defensePeriodEndsAt"].flatMap(Self.date),
                connectorCreatedAt: eventDate, connectorUpdatedAt: eventDate ?? Date()
            )))
        }
    }

    func paymentEvent(_ id: String, _ result: ConnectorResult) -> IncomingWebhookEvent {
        IncomingWebhookEvent(connectorEventId: id, subject: .payment(connectorTransactionId: originalReference, attemptId: nil, paymentId: merchantReference.nilIfEmpty, result: result))
    }

    static func modificationFailure(_ code: String, _ reason: String?) -> ConnectorDecline {
        ConnectorDecline(code: "processing_error", message: reason ?? "Adyen could not complete the \(code == "capture_failed" ? "capture" : code == "technical_cancel_failed" ? "technical cancel" : "cancel")",
                         rawCode: code, processorCode: code, processorMessage: reason ?? code)
    }

    /// Hyperswitch's mapping of Adyen's dispute event codes.
    static func dispute(eventCode: String, disputeStatus: String?) -> (DisputeStage, DisputeStatus)? {
        switch eventCode {
        case "NOTIFICATION_OF_CHARGEBACK": return (.preDispute, .opened)
        case "CHARGEBACK":
            switch disputeStatus {
            case "Won": return (.dispute, .won)
            case "Lost", nil: return (.dispute, .lost)
            default: return (.dispute, .opened)
            }
        case "CHARGEBACK_REVERSED": return (.dispute, disputeStatus == "Pending" ? .challenged : .won)
        case "SECOND_CHARGEBACK": return (.preArbitration, .lost)
        case "PREARBITRATION_WON": return (.preArbitration, disputeStatus == "Pending" ? .opened : .won)
        case "PREARBITRATION_LOST": return (.preArbitration, .lost)
        default: return nil
        }
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
