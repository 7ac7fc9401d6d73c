import Foundation
import PaywireKafka
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// Three gateway replicas on one stack: each leases a reply partition of its own and reads only
/// the replies meant for it, payments through any of them are answered, and a replica that is
/// restarted leaves nothing behind (no lease, no consumer group).
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct GatewayReplicasTests {
    static let replicas = ["gateway", "gateway-2", "gateway-3"]
    let logger = TestEnvironment.logger("gateway-replicas", level: .critical)

    /// A counter of one replica's `/metrics` (its series that carry `matching`), summed by the
    /// value of one of its labels.
    func counter(_ stack: PaywireStack, _ replica: String, _ name: String, by label: String, matching: String = "") async throws -> [String: Int] {
        let metrics = try await stack.request(.GET, "/metrics", service: replica, apiKey: nil).body
        var values: [String: Int] = [:]
        for line in metrics.split(separator: "\n") where line.hasPrefix("\(name){") && (matching.isEmpty || line.contains(matching)) {
            guard let start = line.range(of: "\(label)=\""), let end = line[start.upperBound...].firstIndex(of: "\""),
                  let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            values[String(line[start.upperBound..<end]), default: 0] += Int(value)
        }
        return values
    }

    func repliesRead(_ stack: PaywireStack, _ replica: String) async throws -> [String: Int] {
        try await counter(stack, replica, "paywire_gateway_replies_read_total", by: "addressed_to")
    }

    func leases(_ stack: PaywireStack) async throws -> [String: Int] {
        try await withStackDatabase(stack.databaseURL(owning: "gateway")) { client in
            var leases: [String: Int] = [:]
            let rows = try await client.query("SELECT holder, partition FROM gateway.reply_partition_leases WHERE expires_at > now()")
            for try await (holder, partition) in rows.decode((String, Int).self) { leases[holder] = partition }
            return leases
        }
    }

    @Test func eachReplicaReadsOnlyItsOwnRepliesAndARestartLeavesNothingBehind() async throws {
        try await PaywireStack.with(services: ["payment-core", "gateway"], gatewayReplicas: 3) { stack in
            let apiKey = try await stack.createMerchant("merchant_replicas", webhookURL: nil)
            _ = try await stack.createSandboxAccount(merchantId: "merchant_replicas", apiKey: apiKey)

            // Three replicas, three partitions (the test broker has six).
            let leased = try await leases(stack)
            #expect(leased.count == 3 && Set(leased.values).count == 3, "\(leased)")

            // Payments through every replica, interleaved: each is answered by the one asked.
            let perReplica = 4
            for round in 0..<perReplica {
                for replica in Self.replicas {
                    let payment = try await stack.request(
                        .POST, "/payments", service: replica, apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1000 + round)
                    )
                    #expect(payment.status == 200 && payment.json?["status"] as? String == "succeeded", "\(replica): \(payment.status) \(payment.body)")
                }
            }
            for replica in Self.replicas {
                let read = try await repliesRead(stack, replica)
                // Each payment (create and confirm in one command) is one reply to the replica asked.
                #expect(read["this_replica", default: 0] >= perReplica, "\(replica): \(read)")
                #expect(read["another_replica", default: 0] == 0, "\(replica) read others' replies: \(read)")
            }

            // A replica stopped gives its lease back and leaves no consumer group (nothing committed
            // under its id); started again it leases a partition and answers.
            let before = try await leases(stack)
            #expect(await stack.processes["gateway-2"]!.stop() == 0)
            let after = try await leases(stack)
            let gone = try #require(Set(before.keys).subtracting(after.keys).first, "the stopped replica's lease is given back: \(before) → \(after)")
            #expect(after.count == 2)
            let looker = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: .init(bootstrapServers: stack.kafkaBrokers), groupID: gone, topics: []), logger: logger)
            let committed = try await looker.committedOffsets(topic: TopicNames().gatewayReplies)
            await looker.close()
            #expect(committed.values.allSatisfy { $0 == nil }, "the replica left committed offsets: \(committed)")

            try await stack.startService("gateway-2", executable: "gateway")
            try await stack.waitUntilReady("gateway-2")
            let again = try await stack.request(.POST, "/payments", service: "gateway-2", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
            #expect(again.status == 200 && again.json?["status"] as? String == "succeeded", "\(again.body)")
            let restarted = try await leases(stack)
            #expect(restarted.count == 3 && Set(restarted.values).count == 3, "\(restarted)")
            let read = try await repliesRead(stack, "gateway-2")
            #expect(read["this_replica", default: 0] >= 1 && read["another_replica", default: 0] == 0, "\(read)")
        }
    }

    /// Each replica keeps the keys it has looked up, so a request needs no query to say who sent
    /// it; a key revoked through one replica is refused by that replica from its answer on and by
    /// the others as soon as the database's notification reaches them.
    @Test func aKeyRevokedThroughOneReplicaIsRefusedByEveryReplica() async throws {
        try await PaywireStack.with(services: ["gateway"], gatewayReplicas: 3) { stack in
            _ = try await stack.createMerchant("merchant_keys", webhookURL: nil)
            let created = try await stack.request(.POST, "/api_keys/merchant_keys", body: #"{"name": "to revoke"}"#)
            let apiKey = try #require(created.json?["api_key"] as? String)
            let keyId = try #require(created.json?["key_id"] as? String)
            // A replica trusts its cache only while its listener is connected (it connects after
            // the replica is ready) and empties it on every notification: requests go on until
            // one is answered from the cache, however long that takes here.
            for replica in Self.replicas {
                let cached = await eventually(timeout: .seconds(60)) {
                    let answer = try? await stack.request(.GET, "/accounts/merchant_keys", service: replica, apiKey: apiKey)
                    guard answer?.status == 200 else { return false }
                    let lookups = (try? await counter(stack, replica, "paywire_gateway_cache_lookups_total", by: "answered_by", matching: #"cache="api_keys""#)) ?? [:]
                    return lookups["cache", default: 0] >= 1
                }
                #expect(cached, "\(replica) kept no key")
            }

            #expect(try await stack.request(.DELETE, "/api_keys/merchant_keys/\(keyId)", service: "gateway").status == 200)
            #expect(try await stack.request(.GET, "/accounts/merchant_keys", service: "gateway", apiKey: apiKey).status == 401)
            for replica in Self.replicas.dropFirst() {
                let refused = await eventually(timeout: .seconds(10)) {
                    (try? await stack.request(.GET, "/accounts/merchant_keys", service: replica, apiKey: apiKey).status) == 401
                }
                #expect(refused, "\(replica) still takes the revoked key")
            }
            // And the merchant's other key still works everywhere.
            let other = try await stack.request(.POST, "/api_keys/merchant_keys", body: #"{"name": "kept"}"#)
            let kept = try #require(other.json?["api_key"] as? String)
            for replica in Self.replicas {
                #expect(try await stack.request(.GET, "/accounts/merchant_keys", service: replica, apiKey: kept).status == 200)
                #expect(try await stack.request(.GET, "/accounts/merchant_keys", service: replica, apiKey: apiKey).status == 401)
            }
        }
    }

    /// Each replica keeps the payment settings it has read (profile, processors, configuration
    /// version), so a payment needs no query for them; a configuration change made through one
    /// replica applies to that replica's next payment and to the others' as soon as the database's
    /// notification reaches them.
    @Test func aConfigurationChangeThroughOneReplicaAppliesToEveryReplicasNextPayment() async throws {
        try await PaywireStack.with(services: ["payment-core", "gateway"], gatewayReplicas: 3) { stack in
            let apiKey = try await stack.createMerchant("merchant_settings", webhookURL: nil)
            _ = try await stack.createSandboxAccount(merchantId: "merchant_settings", apiKey: apiKey)
            // As for keys: payments go on until one replica's setting is answered from its cache
            // (the account just created notifies every replica, which empties their caches).
            for replica in Self.replicas {
                let cached = await eventually(timeout: .seconds(60)) {
                    let payment = try? await stack.request(.POST, "/payments", service: replica, apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 500))
                    guard payment?.status == 200, payment?.json?["status"] as? String == "succeeded" else { return false }
                    let lookups = (try? await counter(stack, replica, "paywire_gateway_cache_lookups_total", by: "answered_by", matching: #"cache="configuration""#)) ?? [:]
                    return lookups["cache", default: 0] >= 1
                }
                #expect(cached, "\(replica) kept no payment setting")
            }

            // A second processor: a payment that names none is now ambiguous, on every replica.
            _ = try await stack.createSandboxAccount(merchantId: "merchant_settings", apiKey: apiKey)
            @Sendable func refusedForRouting(_ replica: String) async throws -> Bool {
                let payment = try await stack.request(.POST, "/payments", service: replica, apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 700))
                return payment.status == 400 && payment.body.contains("\"routing\"")
            }
            #expect(try await refusedForRouting("gateway"), "the replica that made the change used its old setting")
            for replica in Self.replicas.dropFirst() {
                let refused = await eventually(timeout: .seconds(10)) { (try? await refusedForRouting(replica)) == true }
                #expect(refused, "\(replica) still routes with the old setting")
            }
        }
    }
}
