/// A dispute's phase, in the order a chargeback goes through them: an inquiry before it
/// (`pre_dispute`), the chargeback (`dispute`), a second round (`pre_arbitration`).
public enum DisputeStage: String, Sendable, Codable, Comparable, CaseIterable {
    case preDispute = "pre_dispute"
    case dispute
    case preArbitration = "pre_arbitration"

    var order: Int {
        switch self {
        case .preDispute: return 0
        case .dispute: return 1
        case .preArbitration: return 2
        }
    }

    public static func < (lhs: DisputeStage, rhs: DisputeStage) -> Bool { lhs.order < rhs.order }
}

/// Each status is also the event the merchant receives (`dispute_opened`, …).
public enum DisputeStatus: String, Sendable, Codable, CaseIterable {
    case opened = "dispute_opened"
    case expired = "dispute_expired"
    case accepted = "dispute_accepted"
    case cancelled = "dispute_cancelled"
    case challenged = "dispute_challenged"
    case won = "dispute_won"
    case lost = "dispute_lost"
}
