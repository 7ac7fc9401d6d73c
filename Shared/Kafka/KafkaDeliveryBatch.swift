import NIOConcurrencyHelpers
import Synchronization

/// The delivery reports of one `sendBatch` call.
///
/// The per-message path takes no lock: each report writes its own slot of `results` and counts
/// down `remaining` atomically. The lock guards only the completion handshake between the last
/// report and the sender's wait, so the continuation resumes exactly once whichever comes first.
final class KafkaDeliveryBatch: @unchecked Sendable {
    typealias Results = [Result<KafkaDeliveryReport, KafkaError>]
    typealias Continuation = CheckedContinuation<Results, Never>

    /// What librdkafka carries as each message's opaque: a pointer to its slot.
    struct Slot {
        let batch: Unmanaged<KafkaDeliveryBatch>
        let index: Int
    }

    let count: Int
    private let results: UnsafeMutableBufferPointer<Result<KafkaDeliveryReport, KafkaError>?>
    let slots: UnsafeMutableBufferPointer<Slot>
    private let remaining: Synchronization.Atomic<Int>

    private enum Completion {
        case pending
        case waiting(Continuation)
        case failed(KafkaError)
        case finished
    }
    private let completion = NIOLockedValueBox<Completion>(.pending)
    /// Set when every report is in; completion then needs only the sender's wait.
    private let allReported = Synchronization.Atomic<Bool>(false)

    init(count: Int) {
        self.count = count
        results = .allocate(capacity: count)
        results.initialize(repeating: nil)
        slots = .allocate(capacity: count)
        remaining = Synchronization.Atomic(count)
        let unmanaged = Unmanaged.passUnretained(self)
        for index in 0..<count {
            (slots.baseAddress! + index).initialize(to: Slot(batch: unmanaged, index: index))
        }
    }

    deinit {
        results.deinitialize().deallocate()
        slots.deinitialize().deallocate()
    }

    func opaque(for index: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(slots.baseAddress! + index)
    }

    static func slot(from opaque: UnsafeMutableRawPointer) -> Slot {
        opaque.assumingMemoryBound(to: Slot.self).pointee
    }

    /// One report (or a synchronous produce failure). Each index is recorded once.
    func record(_ index: Int, _ result: Result<KafkaDeliveryReport, KafkaError>) {
        results[index] = result
        // The release half publishes the slot write to whoever sees the count reach zero.
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            allReported.store(true, ordering: .releasing)
            finishIfWaiting()
        }
    }

    /// The sender has enqueued everything; returns when every report is in (or on `fail`).
    func wait() async -> Results {
        await withCheckedContinuation { continuation in
            let resumeNow = completion.withLockedValue { state -> KafkaError?? in
                switch state {
                case .failed(let error):
                    state = .finished
                    return .some(error)
                case .pending where allReported.load(ordering: .acquiring):
                    state = .finished
                    return .some(nil)
                case .pending:
                    state = .waiting(continuation)
                    return nil
                case .waiting, .finished:
                    preconditionFailure("a delivery batch is waited for once")
                }
            }
            if let failure = resumeNow { continuation.resume(returning: collect(missing: failure ?? .shutdown)) }
        }
    }

    private func finishIfWaiting() {
        let continuation = completion.withLockedValue { state -> Continuation? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .finished
            return continuation
        }
        continuation?.resume(returning: collect())
    }

    /// After the handle is destroyed no report can arrive: whatever is missing failed.
    func failOutstanding(with error: KafkaError) {
        let continuation = completion.withLockedValue { state -> Continuation? in
            switch state {
            case .waiting(let continuation):
                state = .finished
                return continuation
            case .pending:
                // The sender is still enqueuing; its wait returns at once.
                state = .failed(error)
                return nil
            case .failed, .finished:
                return nil
            }
        }
        continuation?.resume(returning: collect(missing: error))
    }

    private func collect(missing: KafkaError = .shutdown) -> Results {
        (0..<count).map { results[$0] ?? .failure(missing) }
    }
}
