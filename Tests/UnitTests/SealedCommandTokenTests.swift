import Foundation
import PaywireModels
import PaywireStore
import Testing

/// Processor tokens cross Kafka sealed: what is encoded for a topic never holds the token, and a
/// sealed token opens only in the command (payment or job) it was sealed for.
struct SealedCommandTokenTests {
    let secrets = try! SecretBox(base64Key: SecretBox.generateKey())

    @Test func aPaymentCommandsTokenIsNeverEncodedInClearAndOpensOnlyForItsPayment() throws {
        var command = PaymentCommand(operation: .create, paymentId: "pay_sealed", merchantId: "m")
        command.processorPaymentToken = "tok_sandbox_4242"
        // Forgetting to seal loses the token rather than leaking it.
        #expect(!String(decoding: try JSONEncoder().encode(command), as: UTF8.self).contains("tok_sandbox"))
        try command.sealProcessorToken(with: secrets)
        let wire = try JSONEncoder().encode(command)
        #expect(!String(decoding: wire, as: UTF8.self).contains("tok_sandbox"))
        var received = try JSONDecoder().decode(PaymentCommand.self, from: wire)
        try received.openProcessorToken(with: secrets)
        #expect(received.processorPaymentToken == "tok_sandbox_4242")
        // Lifted into another payment's command, it does not open.
        var other = PaymentCommand(operation: .create, paymentId: "pay_other", merchantId: "m")
        other.sealedProcessorPaymentToken = command.sealedProcessorPaymentToken
        #expect(throws: (any Error).self) { try other.openProcessorToken(with: secrets) }
    }

    @Test func aRecoveryCommandsTokenIsNeverEncodedInClearAndOpensOnlyForItsJob() throws {
        var command = RecoveryCommand(action: .scheduleFailedPayment, jobId: "job_sealed", merchantId: "m")
        command.processorToken = "tok_sandbox_decline2x_9995"
        try command.sealProcessorToken(with: secrets)
        let wire = try JSONEncoder().encode(command)
        #expect(!String(decoding: wire, as: UTF8.self).contains("tok_sandbox"))
        var received = try JSONDecoder().decode(RecoveryCommand.self, from: wire)
        try received.openProcessorToken(with: secrets)
        #expect(received.processorToken == "tok_sandbox_decline2x_9995")
        var other = RecoveryCommand(action: .scheduleFailedPayment, jobId: "job_other", merchantId: "m")
        other.sealedProcessorToken = command.sealedProcessorToken
        #expect(throws: (any Error).self) { try other.openProcessorToken(with: secrets) }
    }
}
