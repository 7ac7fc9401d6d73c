import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireTestSupport
import Testing

/// Someone who can write to Kafka or reach the gateway's ports, but holds no key: a forged,
/// re-keyed or re-signed command changes nothing and is dead-lettered; the card vault answers
/// only signed takes, addressed to it, fresh, once, and only on its internal listener.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct InsiderTests {
    @Test func aForgedCommandChangesNothingAndIsDeadLettered() async throws {
        try await PaywireStack.with(services: ["payment-core", "gateway"]) { stack in
            let apiKey = try await stack.createMerchant("merchant_insider", webhookURL: nil)
            _ = try await stack.createSandboxAccount(merchantId: "merchant_insider", apiKey: apiKey)
            let authorized = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 2500, captureMethod: "manual"))
            let paymentId = try #require(authorized.json?["payment_id"] as? String)
            #expect(authorized.json?["status"] as? String == "requires_capture")

            // A capture of that payment as the gateway would send it, but not signed by the gateway.
            let topics = TopicNames()
            var capture = PaymentCommand(operation: .capture, paymentId: paymentId, merchantId: "merchant_insider")
            capture.amountToCapture = 2500
            let value = try EventEnvelope(type: MessageType.paymentCommand, merchantId: "merchant_insider", payload: try JSONValue(encoding: capture)).encoded()
            let genuine = stack.commandSigner.signed(KafkaProducerMessage(topic: topics.paymentCommands, key: paymentId, value: Array("{}".utf8)))
            let otherKey = try CommandSigner(environment: ["PAYWIRE_COMMAND_SIGNING_KEY": Data(repeating: 9, count: 32).base64EncodedString()])
            let forged = [
                KafkaProducerMessage(topic: topics.paymentCommands, key: paymentId, value: value),
                otherKey.signed(KafkaProducerMessage(topic: topics.paymentCommands, key: paymentId, value: value)),
                // A genuine signature lifted onto another message.
                KafkaProducerMessage(topic: topics.paymentCommands, key: paymentId, value: value, headers: genuine.headers),
                // A genuinely signed command moved to another key.
                { var moved = stack.commandSigner.signed(KafkaProducerMessage(topic: topics.paymentCommands, key: "pay_other", value: value)); moved.key = Array(paymentId.utf8); return moved }(),
            ]
            let logger = TestEnvironment.logger("insider")
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: stack.kafkaBrokers)), logger: logger)
            for message in forged { _ = try await producer.send(message) }
            await producer.shutdown()

            let kafka = KafkaConfiguration(bootstrapServers: stack.kafkaBrokers)
            var letters: [DeadLetterRecord] = []
            #expect(await eventually(timeout: .seconds(30)) {
                letters = ((try? await DeadLetterArchive.read(kafka: kafka, topic: topics.deadLetter, logger: logger)) ?? []).filter { $0.letter.reason == "forged" }
                return letters.count >= forged.count
            }, "\(stack.logs("payment-core"))")
            #expect(letters.count == forged.count)
            #expect(letters.allSatisfy { $0.letter.originalTopic == topics.paymentCommands && $0.letter.originalKey == paymentId })
            // Nothing happened to the payment; a real capture afterwards goes through.
            let after = try await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey)
            #expect(after.json?["status"] as? String == "requires_capture" && after.json?["amount_received"] as? Int == 0, "\(after.body)")
            let metrics = try await stack.request(.GET, "/metrics", service: "payment-core", apiKey: nil).body
            #expect(metrics.contains("paywire_forged_commands_total \(forged.count)"), "\(metrics.split(separator: "\n").filter { $0.contains("forged") })")
            let captured = try await stack.request(.POST, "/payments/\(paymentId)/capture", apiKey: apiKey, body: "{}")
            #expect(captured.json?["status"] as? String == "succeeded", "\(captured.body)")
        }
    }

    @Test func theCardVaultAnswersOnlyFreshSignedTakesAddressedToItOnItsInternalListener() async throws {
        try await PaywireStack.with(services: ["payment-core", "gateway"], extraEnvironment: ["PAYWIRE_REPLY_TIMEOUT_MS": "500"]) { stack in
            let apiKey = try await stack.createMerchant("merchant_vault_take", webhookURL: nil)
            _ = try await stack.createSandboxAccount(merchantId: "merchant_vault_take", apiKey: apiKey)
            // payment-core down: the card waits in the vault, and its command on Kafka names it.
            stack.processes["payment-core"]!.crash()
            let accepted = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1200))
            #expect(accepted.status == 202, "\(accepted.body)")
            let paymentId = try #require(accepted.json?["payment_id"] as? String)
            var reference: CardVaultReference?
            #expect(await eventually(timeout: .seconds(30)) {
                let messages = (try? await TopicReader.read(brokers: stack.kafkaBrokers, topics: [TopicNames().paymentCommands])) ?? []
                reference = messages.compactMap { message -> CardVaultReference? in
                    guard let envelope = try? EventEnvelope.decode(message.value), let command = try? envelope.payload.decode(PaymentCommand.self),
                          command.paymentId == paymentId else { return nil }
                    return command.cardVault
                }.first
                return reference != nil
            })
            let vault = try #require(reference)
            let url = try #require(URL(string: vault.url))
            let internalPort = try #require(stack.internalPorts["gateway"])
            #expect(url.port == internalPort, "the command names the internal listener, not the public port")
            let signer = try CardVaultSigner(encryptionKey: stack.encryptionKey)
            let authority = "127.0.0.1:\(internalPort)"

            func take(_ target: String, headers: [(String, String)]) async throws -> Int {
                var request = HTTPClientRequest(url: target)
                request.method = .POST
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                _ = try await response.body.collect(upTo: 1 << 16)
                return Int(response.status.code)
            }
            let path = url.path
            // Unsigned; signed for another host (what a command naming that host would have
            // made payment-core sign); signed a minute ago; signed with another key.
            #expect(try await take(vault.url, headers: []) == 403)
            #expect(try await take(vault.url, headers: signer.headers(method: "POST", host: "vault.attacker.example:\(internalPort)", path: path, token: vault.token)) == 403)
            #expect(try await take(vault.url, headers: signer.headers(method: "POST", host: authority, path: path, token: vault.token, now: Date().addingTimeInterval(-60))) == 403)
            let stranger = try CardVaultSigner(encryptionKey: Data(repeating: 3, count: 32).base64EncodedString())
            #expect(try await take(vault.url, headers: stranger.headers(method: "POST", host: authority, path: path, token: vault.token)) == 403)
            // A correctly signed take on the public port finds no such route.
            let valid = signer.headers(method: "POST", host: authority, path: path, token: vault.token)
            #expect(try await take(stack.gatewayURL + path, headers: valid) == 404)
            // The genuine take gets the card once; the same request replayed gets nothing.
            #expect(try await take(vault.url, headers: valid) == 200)
            #expect(try await take(vault.url, headers: valid) == 404)
        }
    }
}
