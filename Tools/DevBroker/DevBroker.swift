import ArgumentParser
import Dispatch
import Foundation
import Logging
import PaywireKafka
import PaywireRuntime

/// Hosts librdkafka's mock cluster for local runs and tests: real Kafka protocol on loopback, no
/// JVM. Paywire's topics are created up front with their partition counts, because the 2.0.2
/// mock cluster does not serve CreateTopics.
@main
struct DevBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paywire-dev-broker",
        abstract: "Run a librdkafka mock Kafka cluster on 127.0.0.1 until SIGTERM."
    )

    @Option(help: "Number of brokers.") var brokers = 3
    @Option(help: "Partitions for each topic created up front.") var partitions = 6
    @Option(name: .customLong("topic"), help: "A topic to create (repeatable); name or name:partitions. Defaults to Paywire's topics.")
    var topics: [String] = []
    @Option(help: "Also write the bootstrap servers to this file (written atomically once ready).")
    var bootstrapFile: String?
    @Option(help: "Serve POST /brokers/{id}/down and /brokers/{id}/up on 127.0.0.1 at this port (the fault drill's broker faults).")
    var controlPort: Int?

    static let coordinatedGroups = ["payment-core", "webhook-dispatcher", "recovery-scheduler"]

    static let defaultTopics = [
        "paywire.payment.commands", "paywire.payment.events", "paywire.recovery.commands",
        "paywire.webhook.commands", "paywire.gateway.replies", "paywire.deadletter", "paywire.configuration",
        "paywire.recovery.events",
    ]

    func run() async throws {
        ParentWatchdog.startIfRequested()
        var logger = Logger(label: "paywire.dev-broker")
        logger.logLevel = .warning
        let cluster = try MockKafkaCluster(brokers: brokers, logger: logger)
        for entry in topics.isEmpty ? Self.defaultTopics : topics {
            let parts = entry.split(separator: ":")
            let count = parts.count > 1 ? Int(parts[1]) ?? partitions : partitions
            try cluster.createTopic(KafkaTopicSpec(name: String(parts[0]), partitions: count))
        }
        // Paywire's consumer groups are coordinated by broker 1, which the control port never
        // takes down: librdkafka 2.0.2's mock cluster aborts (rdkafka_mock_cgrp.c:236) when a
        // member syncs again after its coordinator's connection dropped mid-rebalance. Taking the
        // other brokers down still makes their partitions unavailable, as a Kafka broker's death does.
        if brokers > 1 {
            for group in Self.coordinatedGroups { try cluster.setGroupCoordinator(group, broker: 1) }
        }
        if let bootstrapFile {
            let temporary = bootstrapFile + ".tmp"
            try cluster.bootstrapServers.write(toFile: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary, bootstrapFile)
        }
        FileHandle.standardOutput.write(Data("bootstrap.servers=\(cluster.bootstrapServers)\n".utf8))

        if let controlPort {
            // Runs until SIGTERM or SIGINT (Hummingbird's own handling), then the cluster goes.
            try await BrokerControl.application(cluster: cluster, port: controlPort, logger: logger).runService()
            cluster.shutdown()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let signals = [SIGTERM, SIGINT].map { signalNumber -> any DispatchSourceSignal in
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
                return source
            }
            let once = OnceFlag()
            for source in signals {
                source.setEventHandler {
                    if once.claim() { continuation.resume() }
                }
                source.resume()
            }
            SignalSources.keep(signals)
        }
        cluster.shutdown()
    }
}

/// Keeps the signal sources alive for the process's lifetime.
enum SignalSources {
    nonisolated(unsafe) static var retained: [any DispatchSourceSignal] = []
    static func keep(_ sources: [any DispatchSourceSignal]) { retained = sources }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
