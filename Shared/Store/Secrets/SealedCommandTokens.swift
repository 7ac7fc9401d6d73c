import PaywireModels

/// Processor tokens cross Kafka sealed, as every other secret there: the producer seals the
/// in-memory token just before the command is encoded, the consumer opens it just after decoding.
/// A dead letter of the command keeps it sealed.
extension PaymentCommand {
    public mutating func sealProcessorToken(with secrets: SecretBox) throws {
        guard let token = processorPaymentToken else { return }
        sealedProcessorPaymentToken = try secrets.seal(token, as: .commandProcessorToken, row: paymentId)
        processorPaymentToken = nil
    }

    public mutating func openProcessorToken(with secrets: SecretBox) throws {
        guard let sealed = sealedProcessorPaymentToken else { return }
        processorPaymentToken = try secrets.open(sealed, as: .commandProcessorToken, row: paymentId)
        sealedProcessorPaymentToken = nil
    }
}

extension RecoveryCommand {
    public mutating func sealProcessorToken(with secrets: SecretBox) throws {
        guard let token = processorToken else { return }
        sealedProcessorToken = try secrets.seal(token, as: .recoveryCommandProcessorToken, row: jobId)
        processorToken = nil
    }

    public mutating func openProcessorToken(with secrets: SecretBox) throws {
        guard let sealed = sealedProcessorToken else { return }
        processorToken = try secrets.open(sealed, as: .recoveryCommandProcessorToken, row: jobId)
        sealedProcessorToken = nil
    }
}
