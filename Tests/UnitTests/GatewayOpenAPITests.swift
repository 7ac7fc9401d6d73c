import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import Testing
@testable import Gateway

@Suite struct GatewayOpenAPITests {
    @Test func theDocumentPassesARealOpenAPIValidator() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("paywire-openapi-\(UUID().uuidString).json")
        try PaywireJSON.encoder.encode(GatewayOpenAPI.document).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "openapi_spec_validator", file.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "openapi-spec-validator: \(text)")
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        var environment = ["KAFKA_BROKERS": "127.0.0.1:1", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/db"]
        environment["PAYWIRE_ENCRYPTION_KEY"] = SecretBox.generateKey()
        let configuration = try ServiceConfiguration(serviceName: "gateway", defaultPort: 0, environment: environment)
        var logger = Logger(label: "openapi-test")
        logger.logLevel = .critical
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let routes = GatewayService.makeRouter(try GatewayService.makeAPI(infrastructure, adminKey: "k").0)
        let router = routes.router
        OperationalRoutes.add(to: router, readiness: infrastructure.readiness)
        await infrastructure.producer.shutdown(flushTimeout: .milliseconds(10))

        // Hummingbird writes parameters as `{name}` too; normalise both to one form.
        func normalise(_ path: String) -> String {
            path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        }
        // Internal routes (payment-core's calls into the card vault) are not part of the public API.
        let routed = Set(router.routes.filter { !$0.path.description.hasPrefix("internal") && !$0.path.description.hasPrefix("/internal") }.map { "\($0.method.rawValue) /\(normalise($0.path.description))" })
        let documented = Set(GatewayOpenAPI.operations.map { "\($0.method.uppercased()) /\(normalise(String($0.path.dropFirst())))" })
        #expect(routed.subtracting(documented).isEmpty, "routes missing from the document: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented routes that do not exist: \(documented.subtracting(routed).sorted())")
        #expect(routed.count >= 30)

        // What each operation declares under `security` is what its route's group enforces; the
        // operational routes (health, readiness, metrics) are outside every group and take no key.
        for operation in GatewayOpenAPI.operations {
            let key = "\(operation.method.uppercased()) /\(normalise(String(operation.path.dropFirst())))"
            let enforced: GatewayOpenAPI.Auth = switch routes.access[key] {
            case .admin: .admin
            case .merchant: .merchant
            case .client: .client
            case .open, nil: .none
            }
            #expect(enforced == operation.auth, "\(key): the document says \(operation.auth), the router enforces \(enforced)")
        }
        #expect(routes.access.values.contains(.admin) && routes.access.values.contains(.merchant(.path)) && routes.access.values.contains(.open))
    }
}
