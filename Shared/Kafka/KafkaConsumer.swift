import Foundation
import Logging
import NIOConcurrencyHelpers

/// A consumer-group member. Offsets are *stored* only through `storeOffset(for:)` (librdkafka
/// commits stored offsets in the background and on close), so a message whose handler never
/// finished is delivered again to whoever owns its partition next.
public final class KafkaConsumer: Sendable {
    private let client: RDKafkaClient
    private let executor: RDKafkaBlockingExecutor
    let logger: Logger
    private let closed = NIOLockedValueBox(false)
    private let rebalances: NIOLockedValueBox<[@Sendable (KafkaRebalanceEvent) -> Void]>
    /// Per partition, what waits and since when nothing moved (liveness and metrics).
    public let progress = ConsumerProgress()
    /// False for a consumer that assigns from the end: it has no group to store offsets for.
    let storesOffsets: Bool

    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "kafka.group"] = .string(configuration.groupID)
        self.logger = logger
        let rebalances = NIOLockedValueBox<[@Sendable (KafkaRebalanceEvent) -> Void]>([])
        self.rebalances = rebalances
        client = try RDKafkaClient.make(
            kind: .consumer,
            properties: configuration.rdProperties,
            logger: logger,
            onRebalance: { event in
                for observer in rebalances.withLockedValue({ $0 }) { observer(event) }
            }
        )
        executor = RDKafkaBlockingExecutor(label: "paywire-kafka-consumer-\(configuration.groupID)")
        rebalances.withLockedValue { [progress] in
            $0.append { event in if case .revoked(let partitions) = event { progress.forget(partitions) } }
        }
        storesOffsets = !configuration.assignsFromEnd
        // With no topics the consumer never joins its group: it only looks (`committedOffsets`).
        // One that assigns from the end joins none (`assignFromEnd`).
        guard !configuration.topics.isEmpty, !configuration.assignsFromEnd else { return }
        do {
            try client.subscribe(configuration.topics)
        } catch {
            client.destroy()
            throw error
        }
    }

    var isClosed: Bool { closed.withLockedValue { $0 } }

    /// Ends a poll's wait at once (it returns what it has, perhaps nothing), so the loop around it
    /// looks at its state now: stopping, or resuming paused partitions. Any thread.
    public func interruptPoll() {
        // Under the lock that `close` takes first: the queue cannot be destroyed meanwhile.
        closed.withLockedValue { closed in
            if !closed { client.interruptConsume() }
        }
    }

    /// Called from librdkafka's rebalance callback, on the polling thread.
    public func onRebalance(_ observer: @escaping @Sendable (KafkaRebalanceEvent) -> Void) {
        rebalances.withLockedValue { $0.append(observer) }
    }

    /// How long an idle poll waits. It costs no latency (the wait ends at the first message, a
    /// rebalance, or `interruptPoll`), only wake-ups of an idle consumer: one every two seconds.
    public static let idlePollTimeout = Duration.seconds(2)

    /// Up to `maxMessages`, waiting at most `timeout` for the first. Polling happens on the
    /// consumer's own thread; rebalance callbacks run there too.
    public func poll(maxMessages: Int = 500, timeout: Duration = KafkaConsumer.idlePollTimeout) async throws -> [KafkaConsumerMessage] {
        guard !isClosed else { throw KafkaError.shutdown }
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { throw KafkaError.shutdown }
            return try client.consume(maxMessages: maxMessages, timeoutMilliseconds: milliseconds)
        }
    }

    /// Marks the message as done: the group resumes after it. Call only once its effects are
    /// committed. Storing for a partition this member no longer owns is refused by librdkafka;
    /// the new owner will see the message again and drop it as a duplicate.
    @discardableResult
    public func storeOffset(for message: KafkaConsumerMessage) -> Bool {
        storeOffsets([message.topicPartition: message.offset])
    }

    /// Assigns partitions of `topics` from where they end now (see
    /// `KafkaConsumerConfiguration.assignsFromEnd`): every one, or those `choose` picks from the
    /// list of all. The ends are read before `choose` runs, so a message produced meanwhile is
    /// read, not skipped. Returns the partitions assigned.
    @discardableResult
    public func assignFromEnd(
        topics: [String], timeout: Duration = .seconds(10),
        choose: (@Sendable ([KafkaTopicPartition]) async throws -> [KafkaTopicPartition])? = nil
    ) async throws -> [KafkaTopicPartition] {
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000)
        let ends = try await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { throw KafkaError.shutdown }
            return try client.highWatermarks(topics: topics, timeoutMilliseconds: milliseconds)
        }
        let all = ends.keys.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        let chosen = try await choose?(all) ?? all
        let offsets = ends.filter { chosen.contains($0.key) }
        try await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { throw KafkaError.shutdown }
            try client.assign(offsets)
        }
        return chosen.filter { ends[$0] != nil }
    }

    /// Stores, per partition, the offset after the given last-handled offset, in one call.
    @discardableResult
    public func storeOffsets(_ lastHandled: [KafkaTopicPartition: Int64]) -> Bool {
        guard !lastHandled.isEmpty, storesOffsets else { return true }
        return client.storeOffsets(lastHandled)
    }

    /// Asks for the stored offsets to be committed now, without waiting for the broker's answer
    /// (unlike `commitStoredOffsets`), so a polling loop may call it. Runs on the consumer's
    /// executor, where a close cannot overtake it.
    public func requestCommitOfStoredOffsets() async {
        guard storesOffsets else { return }
        let client = client
        await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { return }
            client.requestCommitOfStoredOffsets()
        }
    }

    /// Commits the stored offsets now and waits for the broker's answer.
    public func commitStoredOffsets() async throws {
        let client = client
        try await executor.run { try client.commitStoredOffsets() }
    }

    /// Each partition's low and high watermark for `topic`, as the broker has them now: a reader
    /// that has seen offset `high - 1` of every partition has read everything produced so far.
    public func watermarks(topic: String, timeout: Duration = .seconds(5)) async throws -> [Int32: KafkaWatermarks] {
        guard !isClosed else { throw KafkaError.shutdown }
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000)
        return try await executor.run { try client.watermarks(topic: topic, timeoutMilliseconds: milliseconds) }
    }

    /// The offsets this consumer's group has committed for each partition of `topic` (nil where it
    /// has committed none). Made with no topics, the consumer asks without joining the group, so
    /// the group's members are not disturbed.
    public func committedOffsets(topic: String, timeout: Duration = .seconds(5)) async throws -> [Int32: Int64?] {
        guard !isClosed else { throw KafkaError.shutdown }
        let client = client
        let milliseconds = Int32(timeout.components.seconds * 1000)
        return try await executor.run { try client.committedOffsets(topic: topic, timeoutMilliseconds: milliseconds) }
    }

    /// Stops fetching for every assigned partition (`true`) or starts again, while polling goes on
    /// (so the member stays in its group and rebalances are served), leaving the partitions of
    /// `exceptTopics` alone. Returns the partitions.
    @discardableResult
    public func setPaused(_ paused: Bool, exceptTopics: Set<String> = []) async throws -> [KafkaTopicPartition] {
        let client = client
        return try await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { throw KafkaError.shutdown }
            return try client.setPaused(paused, exceptTopics: exceptTopics)
        }
    }

    /// Per assigned partition, the messages beyond what this member has fetched, from the last
    /// high watermark librdkafka saw (no request). Add `progress`'s waiting for the whole lag.
    public func lagBeyondPosition() async -> [KafkaTopicPartition: Int64] {
        let client = client
        return await executor.run { [closed] in
            guard !closed.withLockedValue({ $0 }) else { return [:] }
            return client.lagBeyondPosition()
        }
    }

    public func assignment() async throws -> [KafkaTopicPartition] {
        let client = client
        return try await executor.run { try client.assignment() }
    }

    /// Polls and hands each message to `handler`, storing a partition's offset only once every
    /// message up to it was handled (its effects are committed). Returns when `shouldStop` turns
    /// true or the consumer closes; rethrows the handler's error without storing that message's
    /// offset.
    ///
    /// With `concurrentKeys`, see `KeyedPipeline`: messages of different keys run concurrently,
    /// each key in order, so a slow message (a connector call) holds up only its own key; the
    /// partitions of `neverPausedTopics` keep flowing when the rest is paused.
    public func run(
        shouldStop: @escaping @Sendable () -> Bool = { false },
        concurrentKeys: Bool = false,
        maxInFlight: Int = 2000,
        neverPausedTopics: Set<String> = [],
        handler: @escaping @Sendable (KafkaConsumerMessage) async throws -> Void
    ) async throws {
        if concurrentKeys {
            try await KeyedPipeline(consumer: self, handler: handler, maxInFlight: maxInFlight, neverPausedTopics: neverPausedTopics).run(shouldStop: shouldStop)
            return
        }
        var storedSinceCommit = false
        while !shouldStop() && !Task.isCancelled && !isClosed {
            let messages: [KafkaConsumerMessage]
            do {
                messages = try await poll()
            } catch let error as KafkaError where error.kind == .shutdown {
                return
            }
            // Idle after storing: ask for a commit now instead of relying on the background
            // timer alone, so a group at rest has committed everything it handled.
            if messages.isEmpty {
                if storedSinceCommit { await requestCommitOfStoredOffsets() }
                storedSinceCommit = false
                continue
            }
            // Offsets of handled messages are stored once per batch, and before an error
            // propagates, so the stored position never passes a message whose handler failed.
            var handled: [KafkaTopicPartition: Int64] = [:]
            var left = Dictionary(grouping: messages, by: \.topicPartition).mapValues(\.count)
            for (partition, count) in left { progress.update(partition, waiting: count, advanced: false) }
            do {
                for message in messages {
                    try await handler(message)
                    handled[message.topicPartition] = message.offset
                    left[message.topicPartition, default: 1] -= 1
                    progress.update(message.topicPartition, waiting: left[message.topicPartition] ?? 0, advanced: true)
                }
            } catch {
                storeOffsets(handled)
                throw error
            }
            if storeOffsets(handled) { storedSinceCommit = true }
        }
    }

    /// Leaves the group cleanly: commits stored offsets and hands the partitions to the others
    /// at once instead of after the session timeout.
    public func close() async {
        guard closed.withLockedValue({ wasClosed in defer { wasClosed = true }; return !wasClosed }) else { return }
        let client = client
        await executor.run { [storesOffsets] in client.closeConsumer(inGroup: storesOffsets) }
        logger.debug("Kafka consumer closed")
    }

    /// Drops the consumer the way a killed process would: no offset commit, no LeaveGroup. The
    /// group notices only after the session timeout. For failure tests.
    public func abandon() async {
        guard closed.withLockedValue({ wasClosed in defer { wasClosed = true }; return !wasClosed }) else { return }
        let client = client
        await executor.run { client.destroy(skipConsumerClose: true) }
    }
}
