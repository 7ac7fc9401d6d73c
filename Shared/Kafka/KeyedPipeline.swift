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
    /// Messages polled but not finished. Above it the assigned partitions are paused — polling
    /// goes on, so the member stays in its group (not polling for `max.poll.interval.ms` makes
    /// librdkafka leave the group, and nothing would say why) — and resumed below half of it. A
    /// key that waits (a merchant's configuration not there yet) therefore holds memory bounded
    /// by this, however much arrives behind it.
    var maxInFlight = 2000
    /// Topics whose partitions are never paused: messages others wait for (a merchant's
    /// configuration, which commands of the same consumer wait on) must arrive however many wait.
    var neverPausedTopics: Set<String> = []

    /// Messages of one key run in order. The key is taken per topic: ordering holds only within a
    /// partition anyway, and a message must never queue behind another topic's message that waits
    /// for it (a command waiting for its merchant's configuration, say).
    static func queueKey(_ message: KafkaConsumerMessage) -> [UInt8] {
        Array(message.topic.utf8) + [0] + (message.key ?? [])
    }

    struct State {
        /// Waiting messages per key; a key is present while a worker runs for it.
        var queues: [[UInt8]: CircularBuffer<KafkaConsumerMessage>] = [:]
        /// Per partition, the offsets polled and not yet stored, in order, and how many copies of
        /// each are done (a message delivered again — after a rebalance — is a second copy).
        var pending: [KafkaTopicPartition: CircularBuffer<Int64>] = [:]
        var done: [KafkaTopicPartition: [Int64: Int]] = [:]
        /// Per partition, the last handled offset stored since the partition was (re)assigned:
        /// a store never goes back, or a group at rest would sit behind its high watermark.
        var storedUpTo: [KafkaTopicPartition: Int64] = [:]
        /// Per partition, the highest offset polled: an offset at or below it is a redelivery.
        var polledUpTo: [KafkaTopicPartition: Int64] = [:]
        var inFlight = 0
        var failure: (any Error)?
        /// An offset was stored since the last commit this pipeline asked for.
        var storedSinceCommit = false

        /// Queues the message; true when its key has no worker yet.
        mutating func enqueue(_ message: KafkaConsumerMessage) -> Bool {
            inFlight += 1
            pending[message.topicPartition, default: CircularBuffer()].append(message.offset)
            polledUpTo[message.topicPartition] = max(polledUpTo[message.topicPartition] ?? -1, message.offset)
            let key = KeyedPipeline.queueKey(message)
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

        /// Messages of the partition polled and not yet finished.
        func waiting(in partition: KafkaTopicPartition) -> Int { pending[partition]?.count ?? 0 }

        /// Marks the message finished; returns the last handled offset its partition may now be
        /// stored at, if that moves the partition on.
        mutating func finish(_ message: KafkaConsumerMessage) -> Int64? {
            inFlight -= 1
            let partition = message.topicPartition
            done[partition, default: [:]][message.offset, default: 0] += 1
            var reached: Int64?
            while let first = pending[partition]?.first, let copies = done[partition]?[first], copies > 0 {
                _ = pending[partition]!.removeFirst()
                done[partition]![first] = copies == 1 ? nil : copies - 1
                reached = max(reached ?? first, first)
            }
            guard let reached, reached > storedUpTo[partition] ?? -1 else { return nil }
            return reached
        }

        /// The store of `offset` was accepted.
        mutating func stored(_ offset: Int64, for partition: KafkaTopicPartition) {
            storedUpTo[partition] = max(storedUpTo[partition] ?? -1, offset)
            storedSinceCommit = true
        }

        /// The partitions were (re)assigned: their committed offset is where reading resumes,
        /// so what this member stored before counts no more.
        mutating func assigned(_ partitions: [KafkaTopicPartition]) {
            for partition in partitions {
                storedUpTo.removeValue(forKey: partition)
                polledUpTo.removeValue(forKey: partition)
            }
        }
    }

    final class Shared: Sendable {
        let state = Mutex(State())
        /// Partitions assigned by a rebalance and not yet applied to `state`.
        let reassigned = Mutex<[KafkaTopicPartition]>([])
        /// A rebalance assigned partitions since the loop last looked (they start unpaused).
        let assignmentChanged = Mutex(false)
        /// The partitions are paused: a worker that brings the count below the resume mark
        /// interrupts the poll, so resuming does not wait for the poll's timeout.
        let paused = Atomic<Bool>(false)
    }

    /// Runs one key's messages in order until its queue is empty.
    func work(_ first: KafkaConsumerMessage, shared: Shared) async {
        let key = Self.queueKey(first)
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
            // Stored under the lock: two keys of one partition finishing together must not store
            // out of order (an older offset stored last would leave the group short of the end).
            // `storeOffsets` only records the offset in librdkafka's memory; nothing remote.
            let resumable = shared.state.withLock { state -> Bool in
                let reached = state.finish(current)
                if let offset = reached, consumer.storeOffsets([current.topicPartition: offset]) {
                    state.stored(offset, for: current.topicPartition)
                }
                consumer.progress.update(current.topicPartition, waiting: state.waiting(in: current.topicPartition), advanced: reached != nil)
                return state.inFlight == maxInFlight / 2 - 1
            }
            if resumable && shared.paused.load(ordering: .acquiring) { consumer.interruptPoll() }
            message = shared.state.withLock { $0.next(for: key) }
        }
    }

    func run(shouldStop: @escaping @Sendable () -> Bool) async throws {
        let shared = Shared()
        // Noted here, applied by the loop after the poll that ran the callback and before any
        // message of the new assignment is queued; the callback never waits on the state lock
        // (a worker may hold it while it calls into librdkafka).
        consumer.onRebalance { event in
            if case .assigned(let partitions) = event {
                shared.reassigned.withLock { $0 += partitions }
                shared.assignmentChanged.withLock { $0 = true }
            }
        }
        var paused = false {
            didSet { shared.paused.store(paused, ordering: .releasing) }
        }
        try await withThrowingDiscardingTaskGroup { group in
            while !shouldStop() && !Task.isCancelled && !consumer.isClosed {
                if let failure = shared.state.withLock({ $0.failure }) { throw failure }
                let inFlight = shared.state.withLock { $0.inFlight }
                // Paused again after a rebalance too: new assignments start unpaused.
                let rebalanced = shared.assignmentChanged.withLock { changed in defer { changed = false }; return changed }
                if inFlight >= maxInFlight && (!paused || rebalanced) {
                    if let partitions = try? await consumer.setPaused(true, exceptTopics: neverPausedTopics) {
                        paused = true
                        consumer.logger.notice("consumer paused: too many messages waiting", metadata: [
                            "waiting": .stringConvertible(inFlight), "partitions": .stringConvertible(partitions.count),
                        ])
                    }
                } else if paused && inFlight < maxInFlight / 2 {
                    if (try? await consumer.setPaused(false, exceptTopics: neverPausedTopics)) != nil {
                        paused = false
                        consumer.logger.notice("consumer resumed", metadata: ["waiting": .stringConvertible(inFlight)])
                    }
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
                let newlyAssigned = shared.reassigned.withLock { partitions in
                    defer { partitions.removeAll() }
                    return partitions
                }
                if !newlyAssigned.isEmpty { shared.state.withLock { $0.assigned(newlyAssigned) } }
                for message in messages {
                    let starts = shared.state.withLock { state -> Bool in
                        if message.offset <= state.polledUpTo[message.topicPartition] ?? -1 {
                            consumer.logger.notice("message delivered again", metadata: [
                                "kafka.partition": .string(message.topicPartition.description), "kafka.offset": .stringConvertible(message.offset),
                            ])
                        }
                        let starts = state.enqueue(message)
                        consumer.progress.update(message.topicPartition, waiting: state.waiting(in: message.topicPartition), advanced: false)
                        guard starts else { return false }
                        // The new worker is handed this message directly.
                        _ = state.next(for: Self.queueKey(message))
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
