/// The producer's bookkeeping of in-flight batches. It owns no continuation logic beyond
/// deciding *when* one resumes: every method returns the action the caller performs outside the
/// lock, and each batch's continuation is handed out exactly once.
struct KafkaProducerStateMachine {
    typealias Continuation = CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>

    private struct Batch {
        var results: [Result<KafkaDeliveryReport, KafkaError>?]
        var remaining: Int
        var continuation: Continuation?
        /// Set when the caller has finished enqueuing; a batch completes only after that, so a
        /// fast delivery report cannot finish a batch that is still being produced.
        var sealed = false
    }

    enum State { case running, closing, closed }

    private(set) var state: State = .running
    private var nextBatchID: UInt64 = 1
    private var batches: [UInt64: Batch] = [:]

    var inFlightBatches: Int { batches.count }

    enum StartAction { case start(UInt64), reject(KafkaError) }

    mutating func startBatch(count: Int) -> StartAction {
        guard state == .running else { return .reject(.shutdown) }
        let id = nextBatchID
        nextBatchID += 1
        batches[id] = Batch(results: Array(repeating: nil, count: count), remaining: count)
        return .start(id)
    }

    enum CompletionAction {
        case none
        case resume(Continuation, [Result<KafkaDeliveryReport, KafkaError>])
    }

    mutating func record(batch id: UInt64, index: Int, result: Result<KafkaDeliveryReport, KafkaError>) -> CompletionAction {
        // No local copy of the batch may be alive here, or the array below is copied on write.
        guard let count = batches[id]?.results.count, index < count, batches[id]?.results[index] == nil else { return .none }
        // Mutated in place through the dictionary: copying a batch out and back would copy its
        // results array on every report, quadratic in the batch size.
        batches[id]!.results[index] = result
        batches[id]!.remaining -= 1
        return completeIfDone(id)
    }

    /// The caller has enqueued every message of the batch and now waits.
    mutating func wait(batch id: UInt64, continuation: Continuation) -> CompletionAction {
        guard batches[id] != nil else {
            return .resume(continuation, [])
        }
        batches[id]!.continuation = continuation
        batches[id]!.sealed = true
        return completeIfDone(id)
    }

    private mutating func completeIfDone(_ id: UInt64) -> CompletionAction {
        guard let batch = batches[id], batch.sealed, batch.remaining == 0, let continuation = batch.continuation else {
            return .none
        }
        batches[id] = nil
        return .resume(continuation, batch.results.map { $0 ?? .failure(.shutdown) })
    }

    mutating func beginClosing() { if state == .running { state = .closing } }

    /// After the handle is destroyed no report can arrive; whoever still waits hears of shutdown.
    mutating func close() -> [(Continuation, [Result<KafkaDeliveryReport, KafkaError>])] {
        state = .closed
        let pending = batches.values.compactMap { batch -> (Continuation, [Result<KafkaDeliveryReport, KafkaError>])? in
            guard let continuation = batch.continuation else { return nil }
            return (continuation, batch.results.map { $0 ?? .failure(.shutdown) })
        }
        batches.removeAll()
        return pending
    }
}

extension Result: @retroactive Equatable where Success: Equatable, Failure: Equatable {}
