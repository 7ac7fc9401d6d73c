/// The connectors payment-core can route to, by the `connector_name` of a connector account.
public struct ConnectorRegistry: Sendable {
    private let connectors: [String: any Connector]

    public init(_ connectors: [any Connector]) {
        self.connectors = Dictionary(uniqueKeysWithValues: connectors.map { ($0.name, $0) })
    }

    public func connector(named name: String) -> (any Connector)? { connectors[name] }
}
