/// The producer's lifecycle and the batches in flight, so that closing can fail whoever still
/// waits. Touched once per batch, never per message.
struct KafkaProducerStateMachine {
    enum State { case running, closing, closed }

    private(set) var state: State = .running
    private var batches: [ObjectIdentifier: KafkaDeliveryBatch] = [:]
    /// Senders inside librdkafka's produce call right now: the handle is destroyed only once
    /// there are none, and none enters after that is asked.
    private var producing = 0
    private var destroyRequested = false
    private var destroyer: CheckedContinuation<Void, Never>?

    var inFlightBatches: Int { batches.count }

    enum StartAction { case start, reject(KafkaError) }

    mutating func start(_ batch: KafkaDeliveryBatch) -> StartAction {
        guard state == .running else { return .reject(.shutdown) }
        batches[ObjectIdentifier(batch)] = batch
        return .start
    }

    mutating func finish(_ batch: KafkaDeliveryBatch) {
        batches[ObjectIdentifier(batch)] = nil
    }

    mutating func beginClosing() { if state == .running { state = .closing } }

    /// A sender may call into the handle (true) until its destruction is asked (false: the
    /// sender records its messages as failed by the shutdown instead).
    mutating func enterProduce() -> Bool {
        guard !destroyRequested else { return false }
        producing += 1
        return true
    }

    /// The sender is out of the handle; returns the shutdown to resume if it was the last one.
    mutating func leaveProduce() -> CheckedContinuation<Void, Never>? {
        producing -= 1
        guard producing == 0, let waiting = destroyer else { return nil }
        destroyer = nil
        return waiting
    }

    var isDestroyRequested: Bool { destroyRequested }

    enum DestroyAction { case destroyNow, waitForSenders }

    /// From now on no sender enters; the handle may be destroyed once the ones inside are out.
    /// With `waitForSenders`, `continuation` is resumed by the last sender to leave.
    mutating func requestDestroy(_ continuation: CheckedContinuation<Void, Never>) -> DestroyAction {
        destroyRequested = true
        guard producing > 0 else { return .destroyNow }
        destroyer = continuation
        return .waitForSenders
    }

    /// The batches whose waiters must hear of the shutdown.
    mutating func close() -> [KafkaDeliveryBatch] {
        state = .closed
        defer { batches.removeAll() }
        return Array(batches.values)
    }
}
