import Logging
import Metrics
import PaywireKafka
import Synchronization

/// Whether the service is still getting on with its work, for `/health` (an orchestrator restarts
/// a service whose health fails). A consumer whose partition has had messages waiting without
/// moving on for `stallLimit` (`PAYWIRE_CONSUMER_STALL_SECONDS`, default 60) makes the service
/// unhealthy, and the stall is logged with what the consumer is waiting on; every consumer's lag
/// and stuck time are metrics (`paywire_consumer_lag`, `paywire_consumer_stuck_seconds`).
public final class Liveness: Sendable {
    public static let stallKey = "PAYWIRE_CONSUMER_STALL_SECONDS"
    public let stallLimit: Duration
    /// How often each consumer's progress is read into metrics and checked.
    let interval: Duration
    let logger: Logger
    private let watched = Mutex<[String: Watched]>([:])

    struct Watched: Sendable {
        var consumer: KafkaConsumer
        var progress: ConsumerProgress
        /// The last reason a message of this group was retried (what it waits on).
        var lastRetry: String?
    }

    public init(stallLimit: Duration = .seconds(60), interval: Duration = .seconds(5), logger: Logger) {
        self.stallLimit = stallLimit
        self.interval = interval
        self.logger = logger
    }

    public convenience init(environment: [String: String], logger: Logger) throws {
        let seconds = try ServiceConfiguration.integer(environment, Self.stallKey, default: 60, range: 1...86400)
        self.init(stallLimit: .seconds(seconds), interval: .seconds(min(5, max(1, seconds / 4))), logger: logger)
    }

    func watch(group: String, consumer: KafkaConsumer) -> ConsumerWatch {
        watched.withLock { $0[group] = Watched(consumer: consumer, progress: consumer.progress) }
        return ConsumerWatch(group: group, consumer: consumer, liveness: self)
    }

    func unwatch(group: String) {
        _ = watched.withLock { $0.removeValue(forKey: group) }
    }

    /// A message of `group` failed and will be tried again: what it failed on.
    func noteRetry(group: String, reason: String) {
        watched.withLock { $0[group]?.lastRetry = reason }
    }

    func lastRetry(group: String) -> String? { watched.withLock { $0[group]?.lastRetry } }

    /// Messages the group's consumer holds unfinished now.
    public func waiting(group: String) -> Int {
        watched.withLock { $0[group]?.progress.snapshot.values.reduce(0) { $0 + $1.waiting } } ?? 0
    }

    /// The group's lag per partition now, as `paywire_consumer_lag` shows it (nil: not running).
    public func lag(group: String) async -> [KafkaTopicPartition: Int64]? {
        guard let consumer = watched.withLock({ $0[group]?.consumer }) else { return nil }
        return await ConsumerWatch.lag(of: consumer)
    }

    /// What makes the service unhealthy now (empty: healthy).
    public func problems(now: ContinuousClock.Instant = .now) -> [String: String] {
        var problems: [String: String] = [:]
        for (group, entry) in watched.withLock({ $0 }) {
            let stuck = entry.progress.stuck(longerThan: stallLimit, now: now)
            guard let worst = stuck.max(by: { $0.stuckFor < $1.stuckFor }) else { continue }
            problems["consumer:\(group)"] = "\(worst.partition) has \(worst.waiting) message(s) waiting, stuck for \(worst.stuckFor.components.seconds) s"
                + (entry.lastRetry.map { " (last retry: \($0))" } ?? "")
        }
        return problems
    }
}

/// Reads one consumer's progress into metrics every `interval` and logs a stall once when it
/// begins (and when it ends).
struct ConsumerWatch: Sendable {
    let group: String
    let consumer: KafkaConsumer
    let liveness: Liveness

    /// Per partition, the messages not yet finished: beyond what the consumer fetched, plus what it
    /// holds unfinished (`paywire_consumer_lag`).
    static func lag(of consumer: KafkaConsumer) async -> [KafkaTopicPartition: Int64] {
        let progress = consumer.progress.snapshot
        let beyond = await consumer.lagBeyondPosition()
        var lag: [KafkaTopicPartition: Int64] = [:]
        for partition in Set(beyond.keys).union(progress.keys) {
            lag[partition] = (beyond[partition] ?? 0) + Int64(progress[partition]?.waiting ?? 0)
        }
        return lag
    }

    func run(until stopped: @escaping @Sendable () -> Bool) async {
        var reported: Set<KafkaTopicPartition> = []
        var lagGauges: [KafkaTopicPartition: Gauge] = [:]
        let stuckGauge = Gauge(label: "paywire_consumer_stuck_seconds", dimensions: [("group", group)])
        let waitingGauge = Gauge(label: "paywire_consumer_waiting_messages", dimensions: [("group", group)])
        while !stopped() && !Task.isCancelled {
            // A stopping consumer cancels this watch, which ends the sleep at once.
            do { try await Task.sleep(for: liveness.interval) } catch { return }
            let now = ContinuousClock.now
            let progress = consumer.progress.snapshot
            for (partition, lag) in await Self.lag(of: consumer) {
                let gauge = lagGauges[partition] ?? Gauge(label: "paywire_consumer_lag", dimensions: [
                    ("group", group), ("topic", partition.topic), ("partition", String(partition.partition)),
                ])
                lagGauges[partition] = gauge
                gauge.record(lag)
            }
            waitingGauge.record(progress.values.reduce(0) { $0 + $1.waiting })
            let stuck = consumer.progress.stuck(longerThan: .zero, now: now)
            stuckGauge.record(Double(stuck.map(\.stuckFor).max()?.components.seconds ?? 0))
            let stalled = stuck.filter { $0.stuckFor >= liveness.stallLimit }
            for stall in stalled where !reported.contains(stall.partition) {
                liveness.logger.error("consumer stalled: messages waiting and the partition has not moved on", metadata: [
                    "kafka.group": .string(group), "kafka.partition": .string(stall.partition.description),
                    "waiting": .stringConvertible(stall.waiting), "stuck_seconds": .stringConvertible(stall.stuckFor.components.seconds),
                    "waiting_on": .string(liveness.lastRetry(group: group) ?? "a message still being handled"),
                ])
            }
            let stalledNow = Set(stalled.map(\.partition))
            for partition in reported.subtracting(stalledNow) {
                liveness.logger.notice("consumer moving again", metadata: ["kafka.group": .string(group), "kafka.partition": .string(partition.description)])
            }
            reported = stalledNow
        }
    }
}
