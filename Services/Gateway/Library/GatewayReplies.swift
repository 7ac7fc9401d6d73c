import Foundation
import Logging
import PaywireKafka
import PaywireModels
import Synchronization

/// Matches payment-core's replies to the requests this gateway replica is waiting on. Each
/// replica reads every reply (a consumer group of its own, starting at the end) and keeps those
/// addressed to it. A waiter is registered before its command is sent, so a fast reply cannot
/// arrive unseen, and each waiter is resumed exactly once: by its reply or by its deadline.
final class GatewayReplies: Sendable {
    enum Slot {
        case registered
        case arrived(GatewayReply)
        case waiting(CheckedContinuation<GatewayReply?, Never>)
    }

    let instanceId: String
    private let slots = Mutex<[String: Slot]>([:])
    let logger: Logger

    init(instanceId: String, logger: Logger) {
        self.instanceId = instanceId
        self.logger = logger
    }

    func register(_ correlationId: String) {
        slots.withLock { $0[correlationId] = .registered }
    }

    func forget(_ correlationId: String) {
        let slot = slots.withLock { $0.removeValue(forKey: correlationId) }
        if case .waiting(let continuation)? = slot { continuation.resume(returning: nil) }
    }

    /// The reply, or nil when `timeout` runs out first.
    func wait(_ correlationId: String, timeout: Duration) async -> GatewayReply? {
        await withCheckedContinuation { (continuation: CheckedContinuation<GatewayReply?, Never>) in
            let arrived: GatewayReply?? = slots.withLock { slots in
                switch slots[correlationId] {
                case .arrived(let reply)?:
                    slots.removeValue(forKey: correlationId)
                    return .some(reply)
                case .registered?:
                    slots[correlationId] = .waiting(continuation)
                    return .none
                default:
                    return .some(nil)
                }
            }
            if let arrived {
                continuation.resume(returning: arrived)
                return
            }
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.expire(correlationId)
            }
        }
    }

    private func expire(_ correlationId: String) {
        let slot: Slot? = slots.withLock { slots in
            guard case .waiting? = slots[correlationId] else { return nil }
            return slots.removeValue(forKey: correlationId)
        }
        if case .waiting(let continuation)? = slot { continuation.resume(returning: nil) }
    }

    /// The reply consumer's handler.
    func handle(_ message: KafkaConsumerMessage) async throws {
        guard let envelope = try? TypedEnvelope<GatewayReply>.decode(message.value), envelope.type == MessageType.gatewayReply,
              envelope.payload.replyTo == instanceId else { return }
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
