/// The producer's lifecycle and the batches in flight, so that closing can fail whoever still
/// waits. Touched once per batch, never per message.
struct KafkaProducerStateMachine {
    enum State { case running, closing, closed }

    private(set) var state: State = .running
    private var batches: [ObjectIdentifier: KafkaDeliveryBatch] = [:]

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

    /// The batches whose waiters must hear of the shutdown.
    mutating func close() -> [KafkaDeliveryBatch] {
        state = .closed
        defer { batches.removeAll() }
        return Array(batches.values)
    }
}
