import NIOCore
import Synchronization

/// Runs a consumer's messages concurrently across keys and in order within a key, without
/// batch barriers: polling goes on while earlier messages run, each key has at most one message
/// in its handler, and a partition's offset is stored only up to the first message that has not
/// finished (so a crash redelivers exactly the unfinished ones and those after them). A slow
/// message — a connector call waiting out its timeout — holds up its own key only.
struct KeyedPipeline: Sendable {
    let consumer: KafkaConsumer
    let handler: @Sendable (KafkaConsumerMessage) async throws -> Void
    /// Messages polled but not finished; polling pauses above it.
    var maxInFlight = 2000

    struct State {
        /// Waiting messages per key; a key is present while a worker runs for it.
        var queues: [[UInt8]: CircularBuffer<KafkaConsumerMessage>] = [:]
        /// Per partition, the offsets polled and not yet stored, in order, and which are done.
        var pending: [KafkaTopicPartition: CircularBuffer<Int64>] = [:]
        var done: [KafkaTopicPartition: Set<Int64>] = [:]
        var inFlight = 0
        var failure: (any Error)?
        /// An offset was stored since the last commit this pipeline asked for.
        var storedSinceCommit = false

        /// Queues the message; true when its key has no worker yet.
        mutating func enqueue(_ message: KafkaConsumerMessage) -> Bool {
            inFlight += 1
            pending[message.topicPartition, default: CircularBuffer()].append(message.offset)
            let key = message.key ?? []
            if queues[key] != nil {
                queues[key]!.append(message)
                return false
            }
            queues[key] = CircularBuffer([message])
            return true
        }

        /// The key's next message, or nil (and the key's worker ends). The key stays in `queues`,
        /// empty, while its worker handles the message returned: that entry is what stops a
        /// second worker starting for the key.
        mutating func next(for key: [UInt8]) -> KafkaConsumerMessage? {
            guard failure == nil, var queue = queues[key], let message = queue.first else {
                queues.removeValue(forKey: key)
                return nil
            }
            _ = queue.removeFirst()
            queues[key] = queue
            return message
        }

        /// Marks the message finished; returns the offset its partition may now be stored at.
        mutating func finish(_ message: KafkaConsumerMessage) -> Int64? {
            inFlight -= 1
            let partition = message.topicPartition
            done[partition, default: []].insert(message.offset)
            var stored: Int64?
            while let first = pending[partition]?.first, done[partition]?.contains(first) == true {
                _ = pending[partition]!.removeFirst()
                done[partition]!.remove(first)
                stored = first
            }
            return stored
        }
    }

    final class Shared: Sendable {
        let state = Mutex(State())
    }

    /// Runs one key's messages in order until its queue is empty.
    func work(_ first: KafkaConsumerMessage, shared: Shared) async {
        let key = first.key ?? []
        // The first message was dequeued by whoever started this worker.
        var message: KafkaConsumerMessage? = first
        while let current = message {
            do {
                try await handler(current)
            } catch {
                // The handler gives up only on shutdown; the rest stays unstored.
                shared.state.withLock { state in
                    if state.failure == nil { state.failure = error }
                    state.queues.removeValue(forKey: key)
                }
                return
            }
            if let offset = shared.state.withLock({ $0.finish(current) }), consumer.storeOffsets([current.topicPartition: offset]) {
                shared.state.withLock { $0.storedSinceCommit = true }
            }
            message = shared.state.withLock { $0.next(for: key) }
        }
    }

    func run(shouldStop: @escaping @Sendable () -> Bool) async throws {
        let shared = Shared()
        try await withThrowingDiscardingTaskGroup { group in
            while !shouldStop() && !Task.isCancelled && !consumer.isClosed {
                if let failure = shared.state.withLock({ $0.failure }) { throw failure }
                if shared.state.withLock({ $0.inFlight }) >= maxInFlight {
                    try await Task.sleep(for: .milliseconds(5))
                    continue
                }
                let messages: [KafkaConsumerMessage]
                do {
                    messages = try await consumer.poll()
                } catch let error as KafkaError where error.kind == .shutdown {
                    break
                }
                // Idle with nothing in hand after storing: ask for a commit now (it does not
                // block) instead of relying on the background timer alone, so a group at rest
                // has committed everything it handled.
                if messages.isEmpty {
                    let commit = shared.state.withLock { state -> Bool in
                        guard state.inFlight == 0, state.storedSinceCommit else { return false }
                        state.storedSinceCommit = false
                        return true
                    }
                    if commit { await consumer.requestCommitOfStoredOffsets() }
                    continue
                }
                for message in messages {
                    let starts = shared.state.withLock { state -> Bool in
                        guard state.enqueue(message) else { return false }
                        // The new worker is handed this message directly.
                        _ = state.next(for: message.key ?? [])
                        return true
                    }
                    if starts { group.addTask { await self.work(message, shared: shared) } }
                }
            }
            // Stopping: workers finish the message in hand (or give up when the handler does).
        }
        if let failure = shared.state.withLock({ $0.failure }) { throw failure }
    }
}
