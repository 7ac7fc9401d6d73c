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

    /// Every link leads somewhere real: its target operation exists, it fills every path
    /// parameter the target needs, and each expression reads a parameter the source has or a field
    /// the source's answer documents.
    @Test func everyLinkLeadsFromAnAnswerToAnOperationThatTakesItsIds() throws {
        let operations = Dictionary(uniqueKeysWithValues: GatewayOpenAPI.operations.map { ("\($0.method) \($0.path)", $0) })
        let byId = Dictionary(uniqueKeysWithValues: GatewayOpenAPI.operations.map { (GatewayOpenAPI.operationId(method: $0.method, path: $0.path), $0) })
        let schemas = GatewayOpenAPI.schemas
        func pathParameters(_ path: String) -> Set<String> {
            Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
        }
        /// The schema at a JSON pointer inside a response schema (`events/0/event_id`).
        func field(_ pointer: String, in schemaName: String) -> JSONValue? {
            var schema = schemas[schemaName]
            for part in pointer.split(separator: "/") {
                if case .string(let reference)? = schema?["$ref"] { schema = schemas[String(reference.split(separator: "/").last!)] }
                if Int(part) != nil { schema = schema?["items"]; continue }
                if case .array(let parts)? = schema?["allOf"] { schema = parts.compactMap { $0["properties"]?[String(part)] }.first; continue }
                schema = schema?["properties"]?[String(part)]
            }
            return schema
        }
        var count = 0
        for (source, links) in GatewayOpenAPI.links {
            let from = try #require(operations[source], "\(source)")
            for link in links {
                count += 1
                let target = try #require(byId[GatewayOpenAPI.operationId(method: link.method, path: link.path)], "\(source) → \(link.name)")
                let given = Set(link.parameters.keys.map { $0.hasPrefix("path.") ? String($0.dropFirst(5)) : $0 })
                #expect(pathParameters(target.path).isSubset(of: given), "\(source) → \(link.name) leaves a path parameter of \(target.path) to chance")
                for (name, expression) in link.parameters {
                    if name.hasPrefix("header.") {
                        #expect(target.headers.contains { "header.\($0.name)" == name }, "\(link.name): \(target.path) has no \(name)")
                    }
                    if expression.hasPrefix("$request.path.") {
                        #expect(pathParameters(from.path).contains(String(expression.dropFirst(14))), "\(link.name): \(expression) is not a parameter of \(from.path)")
                    } else if expression.hasPrefix("$request.header.") {
                        #expect(from.headers.contains { $0.name == String(expression.dropFirst(16)) }, "\(link.name): \(expression)")
                    } else {
                        #expect(expression.hasPrefix("$response.body#/"), "\(link.name): \(expression)")
                        #expect(field(String(expression.dropFirst(16)), in: from.response) != nil, "\(link.name): \(from.response) documents no \(expression)")
                    }
                }
            }
        }
        #expect(count >= 40)
        // The links reach the document, under the success answer (and a 202 answer where there is one).
        let paths = try #require(GatewayOpenAPI.document["paths"])
        #expect(paths["/payments"]?["post"]?["responses"]?["200"]?["links"]?["CapturePayment"]?["operationId"] == .string("post_payments_payment_id_capture"))
        #expect(paths["/payments"]?["post"]?["responses"]?["202"]?["links"]?["RefundPayment"]?["requestBody"]?["payment_id"] == .string("$response.body#/payment_id"))
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
