import Foundation
import PaywireModels
import Testing
@testable import PaymentCore

/// What the gateway declares a connector supports is what payment-core's connector does.
@Suite struct ConnectorFeaturesTests {
    @Test func everyPaymentConnectorMatchesItsDeclaredFeatures() {
        let connectors: [any Connector] = [SandboxConnector(), StripeConnector(baseURL: "http://127.0.0.1:1", http: .shared, timeout: .seconds(1)),
                                              AdyenConnector(baseURL: "http://127.0.0.1:1", disputeBaseURL: "http://127.0.0.1:1", http: .shared, timeout: .seconds(1))]
        let declared = ConnectorFeatures.all.values.filter { $0.category == .paymentProcessor }.map(\.name).sorted()
        #expect(connectors.map(\.name).sorted() == declared)
        for connector in connectors {
            guard let features = ConnectorFeatures.all[connector.name] else { Issue.record("\(connector.name) undeclared"); continue }
            let capabilities = connector.capabilities
            #expect(Set(features.paymentMethods.keys) == capabilities.paymentMethods, "\(connector.name)")
            #expect(features.captureMethods.contains("manual") == capabilities.manualCapture, "\(connector.name)")
            #expect(features.supports(flow: "refund") == capabilities.refunds, "\(connector.name)")
            #expect(!features.webhookFlows.isEmpty == capabilities.incomingWebhooks, "\(connector.name)")
            #expect(features.supports(flow: "sync") == capabilities.statusLookup, "\(connector.name)")
            #expect(features.partialCapture == capabilities.partialCapture, "\(connector.name)")
        }
    }
}
