import PaywireModels

/// Which reports may move a dispute (Hyperswitch's rules): within a stage, an opened dispute may
/// expire, be accepted, cancelled or challenged, and a challenged one won or lost; nothing leaves
/// the other statuses. A later stage starts over (a pre-arbitration may open, be won or lost), and
/// a stage never goes back.
public enum DisputeStateMachine {
    public enum Outcome: Equatable {
        case moved(stage: DisputeStage, status: DisputeStatus)
        /// The same stage and status again (a duplicate report): nothing to do.
        case unchanged
        /// Not allowed from where the dispute is; the report is recorded as the processor's
        /// status only.
        case refused
    }

    static let allowed: [DisputeStatus: Set<DisputeStatus>] = [
        .opened: [.expired, .accepted, .cancelled, .challenged],
        .challenged: [.won, .lost],
    ]

    public static func apply(stage newStage: DisputeStage, status newStatus: DisputeStatus, to stage: DisputeStage, _ status: DisputeStatus) -> Outcome {
        if newStage < stage { return .refused }
        if newStage > stage { return .moved(stage: newStage, status: newStatus) }
        if newStatus == status { return .unchanged }
        return allowed[status, default: []].contains(newStatus) ? .moved(stage: newStage, status: newStatus) : .refused
    }
}
