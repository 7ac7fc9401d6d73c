import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import Synchronization

/// Matches payment-core's replies to the requests this gateway replica is waiting on. Each
/// replica reads one partition of the reply topic (leased, see `ReplyPartitionLease`; assigned
/// from its end at start, in no consumer group), names it in every command's `reply_partition`,
/// and keeps the replies addressed to it (a partition may be shared when replicas outnumber
/// partitions). A waiter is registered before its command is sent, so a fast reply cannot
/// arrive unseen, and each waiter is resumed exactly once: by its reply, by its deadline, or by
/// the request's cancellation. Nothing outlives the wait: its deadline is a task of the wait's own
/// group, cancelled when the reply comes.
final class GatewayReplies: Sendable {
    enum Slot {
        case registered
        case arrived(GatewayReply)
        case waiting(CheckedContinuation<GatewayReply?, Never>)
        /// The wait ended (deadline, cancellation) before it parked: it ends at once when it does.
        case abandoned
    }

    let instanceId: String
    private let slots = Mutex<[String: Slot]>([:])
    private let partition = Mutex<Int32?>(nil)
    let logger: Logger
    private let addressedHere: Counter
    private let addressedElsewhere: Counter
    /// Replies read that were addressed to this replica, and to another (a shared partition).
    private let counts = Mutex<(here: Int, elsewhere: Int)>((0, 0))

    init(instanceId: String, logger: Logger) {
        self.instanceId = instanceId
        self.logger = logger
        addressedHere = Counter(label: "paywire_gateway_replies_read_total", dimensions: [("addressed_to", "this_replica")])
        addressedElsewhere = Counter(label: "paywire_gateway_replies_read_total", dimensions: [("addressed_to", "another_replica")])
    }

    /// The reply partition this replica reads, which its commands name (nil until assigned:
    /// payment-core then sends by key, and a reply that lands elsewhere is answered from the
    /// database when the wait runs out).
    var replyPartition: Int32? {
        get { partition.withLock { $0 } }
        set { partition.withLock { $0 = newValue } }
    }

    var readCounts: (here: Int, elsewhere: Int) { counts.withLock { $0 } }

    func register(_ correlationId: String) {
        slots.withLock { $0[correlationId] = .registered }
    }

    func forget(_ correlationId: String) {
        let slot = slots.withLock { $0.removeValue(forKey: correlationId) }
        if case .waiting(let continuation)? = slot { continuation.resume(returning: nil) }
    }

    /// Requests waiting for a reply now (for tests and metrics).
    var waiting: Int { slots.withLock { $0.count } }

    /// The reply, or nil when `timeout` runs out first or the calling task is cancelled.
    func wait(_ correlationId: String, timeout: Duration) async -> GatewayReply? {
        let reply = await withTaskGroup(of: GatewayReply?.self) { group in
            group.addTask { await self.reply(to: correlationId) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            // The first to end ends the other; a reply that came meanwhile still counts.
            var reply: GatewayReply?
            for await result in group {
                group.cancelAll()
                if reply == nil { reply = result }
            }
            return reply
        }
        slots.withLock { _ = $0.removeValue(forKey: correlationId) }
        return reply
    }

    private func reply(to correlationId: String) async -> GatewayReply? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<GatewayReply?, Never>) in
                let ready: GatewayReply?? = slots.withLock { slots in
                    switch slots[correlationId] {
                    case .arrived(let reply)?:
                        slots.removeValue(forKey: correlationId)
                        return .some(reply)
                    case .registered?:
                        slots[correlationId] = .waiting(continuation)
                        return .none
                    default:
                        slots.removeValue(forKey: correlationId)
                        return .some(nil)
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            abandon(correlationId)
        }
    }

    private func abandon(_ correlationId: String) {
        let slot: Slot? = slots.withLock { slots in
            switch slots[correlationId] {
            case .waiting?:
                return slots.removeValue(forKey: correlationId)
            case .registered?:
                slots[correlationId] = .abandoned
                return nil
            default:
                return nil
            }
        }
        if case .waiting(let continuation)? = slot { continuation.resume(returning: nil) }
    }

    /// The reply consumer's handler.
    func handle(_ message: KafkaConsumerMessage) async throws {
        guard let envelope = try? TypedEnvelope<GatewayReply>.decode(message.value), envelope.type == MessageType.gatewayReply else { return }
        guard envelope.payload.replyTo == instanceId else {
            addressedElsewhere.increment()
            counts.withLock { $0.elsewhere += 1 }
            return
        }
        addressedHere.increment()
        counts.withLock { $0.here += 1 }
        let reply = envelope.payload
        let waiter: CheckedContinuation<GatewayReply?, Never>? = slots.withLock { slots in
            switch slots[reply.correlationId] {
            case .registered?:
                slots[reply.correlationId] = .arrived(reply)
                return nil
            case .waiting(let continuation)?:
                slots.removeValue(forKey: reply.correlationId)
                return continuation
            default:
                return nil
            }
        }
        waiter?.resume(returning: reply)
    }
}
