/// A payment intent's status, with Hyperswitch's names.
public enum PaymentStatus: String, Codable, Sendable, CaseIterable {
    case requiresPaymentMethod = "requires_payment_method"
    case requiresConfirmation = "requires_confirmation"
    case processing
    /// The outcome stayed unknown through every status sync (the processor has no object id we
    /// could ask about, and its search found nothing): an operator decides. Never `failed` on
    /// that evidence, since the charge may exist; a later webhook still settles it.
    case requiresMerchantAction = "requires_merchant_action"
    case requiresCapture = "requires_capture"
    case succeeded
    case partiallyCaptured = "partially_captured"
    case failed
    case cancelled

    /// Final states never change again (refunds are objects of their own).
    public var isFinal: Bool {
        switch self {
        case .succeeded, .partiallyCaptured, .failed, .cancelled: return true
        default: return false
        }
    }
}

/// What can happen to a payment. Connector outcomes arrive through `authorized`, `charged`,
/// `declined` and `pending`, whichever path brought them (the call's answer, a status sync or an
/// incoming webhook).
public enum PaymentEvent: Sendable, Equatable {
    case confirm
    case pending
    case authorized
    case charged(amount: Int)
    case declined
    case captured(amount: Int, of: Int)
    case cancel
    /// Every status sync ended without an answer: hand the payment to an operator.
    case review
    /// The processor took a capture or cancel and will say later how it ended (Adyen): the
    /// authorized payment is `processing` meanwhile.
    case modificationRequested
    /// The processor refused the cancel it had taken: the payment is authorized again.
    case modificationRefused
    /// The processor reports a cancel it took as done (a merchant's `cancel` of a payment
    /// still being processed is refused; only this report may cancel one).
    case cancelConfirmed
}

/// The legal moves between statuses. Anything else is refused, and a final status never moves:
/// a late webhook or a second confirm cannot regress or double-charge a payment.
public enum PaymentStateMachine {
    public struct IllegalTransition: Error, Equatable, CustomStringConvertible {
        public let from: PaymentStatus
        public let event: PaymentEvent
        public var description: String { "a payment in status \(from.rawValue) cannot take \(event)" }
    }

    public enum Outcome: Equatable, Sendable {
        /// The status changes; emit the event that announces it.
        case moved(to: PaymentStatus)
        /// The payment is already where this event would put it: a duplicate, change nothing.
        case unchanged
    }

    public static func apply(_ event: PaymentEvent, to status: PaymentStatus) throws -> Outcome {
        let target: PaymentStatus
        switch (status, event) {
        case (.requiresConfirmation, .confirm), (.requiresPaymentMethod, .confirm):
            target = .processing
        case (.processing, .pending), (.requiresMerchantAction, .pending), (.requiresMerchantAction, .review):
            return .unchanged
        case (.processing, .review):
            target = .requiresMerchantAction
        case (.processing, .authorized), (.requiresMerchantAction, .authorized):
            target = .requiresCapture
        case (.processing, .charged), (.requiresCapture, .charged), (.requiresMerchantAction, .charged):
            target = .succeeded
        case (.processing, .declined), (.requiresMerchantAction, .declined):
            target = .failed
        case (.requiresMerchantAction, .cancel):
            target = .cancelled
        case (.requiresCapture, .modificationRequested):
            target = .processing
        case (.processing, .modificationRefused):
            target = .requiresCapture
        case (.processing, .cancelConfirmed), (.requiresCapture, .cancelConfirmed):
            target = .cancelled
        case (.cancelled, .cancelConfirmed):
            return .unchanged
        case (.requiresCapture, .captured(let amount, let of)), (.processing, .captured(let amount, let of)):
            guard amount > 0, amount <= of else { throw IllegalTransition(from: status, event: event) }
            target = amount == of ? .succeeded : .partiallyCaptured
        case (.requiresConfirmation, .cancel), (.requiresPaymentMethod, .cancel), (.requiresCapture, .cancel):
            target = .cancelled
        // Repeats of the outcome that made a status are duplicates (webhook after psync, say).
        case (.requiresCapture, .authorized), (.succeeded, .charged), (.failed, .declined), (.cancelled, .cancel):
            return .unchanged
        case (.succeeded, .captured), (.partiallyCaptured, .captured):
            return .unchanged
        default:
            throw IllegalTransition(from: status, event: event)
        }
        return .moved(to: target)
    }
}
