import Foundation
import Hummingbird
import Logging
import PaywireKafka

/// The dev broker's control port, on loopback: `POST /brokers/{id}/down` and `/brokers/{id}/up`
/// take one broker of the mock cluster away and bring it back (librdkafka's
/// `rd_kafka_mock_broker_set_down` / `_up`), and `GET /brokers` says which are down. The fault
/// drill uses it to take brokers away while traffic flows. Broker 1, the groups' coordinator,
/// stays up (409).
enum BrokerControl {
    static func application(cluster: MockKafkaCluster, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        let down = BrokersDown()
        router.get("/brokers") { _, _ in
            "{\"brokers\": \(cluster.brokerCount), \"down\": [\(down.ids.sorted().map(String.init).joined(separator: ","))]}\n"
        }
        router.post("/brokers/:id/:state") { _, context -> String in
            guard let id = context.parameters.get("id", as: Int.self), (1...cluster.brokerCount).contains(id) else {
                throw HTTPError(.notFound, message: "no such broker: the ids are 1...\(cluster.brokerCount)")
            }
            let state = context.parameters.get("state") ?? ""
            guard state == "down" || state == "up" else { throw HTTPError(.notFound, message: "down or up") }
            // Broker 1 coordinates the consumer groups (see DevBroker.coordinatedGroups).
            if state == "down", id == 1, cluster.brokerCount > 1 {
                throw HTTPError(.conflict, message: "broker 1 coordinates the consumer groups and stays up (librdkafka 2.0.2's mock cluster aborts when a group's coordinator goes away mid-rebalance); take 2...\(cluster.brokerCount) down")
            }
            try cluster.setBroker(id, up: state == "up")
            down.set(id, down: state == "down")
            logger.warning("broker \(id) \(state)")
            return "broker \(id) \(state)\n"
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "paywire-dev-broker"), logger: logger)
    }
}

/// Which brokers the control port has taken down.
final class BrokersDown: @unchecked Sendable {
    private let lock = NSLock()
    private var down: Set<Int> = []

    var ids: Set<Int> {
        lock.lock()
        defer { lock.unlock() }
        return down
    }

    func set(_ id: Int, down isDown: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if isDown { down.insert(id) } else { down.remove(id) }
    }
}
