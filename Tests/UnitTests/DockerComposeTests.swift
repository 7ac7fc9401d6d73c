import Foundation
import Gateway
import PaymentCore
import PaywireRuntime
import RecoveryScheduler
import Testing
import WebhookDispatcher

/// No Docker engine runs here, so the compose file is checked against the code instead: every
/// service it builds runs an executable that Package.swift declares, and every variable it sets
/// on them is one the services read.
@Suite struct DockerComposeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct ComposeService {
        var name: String
        var builds = false
        var command: [String] = []
        var environment: Set<String> = []
    }

    /// Reads the subset of YAML the compose file uses: two-space indentation, `command` as a
    /// flow list, `environment` as a map, and the `&service-env` anchor merged with `<<:`.
    static func parseCompose(_ text: String) -> [String: ComposeService] {
        var anchors: [String: Set<String>] = [:]
        var services: [String: ComposeService] = [:]
        var section = ""
        var current: String?
        var anchorName: String?
        var inEnvironment = false
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(rawLine)
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("#") || line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let indent = line.prefix { $0 == " " }.count
            let content = line.trimmingCharacters(in: .whitespaces)
            if indent == 0 {
                section = String(content.split(separator: ":")[0])
                anchorName = content.range(of: "&").map { String(content[$0.upperBound...]) }
                current = nil
                continue
            }
            if let anchor = anchorName, indent == 2 {
                anchors[anchor, default: []].insert(String(content.split(separator: ":")[0]))
                continue
            }
            guard section == "services" else { continue }
            if indent == 2 {
                let name = String(content.dropLast())
                current = name
                services[name] = ComposeService(name: name)
                inEnvironment = false
                continue
            }
            guard let service = current else { continue }
            if indent == 4 {
                inEnvironment = content == "environment:"
                if content.hasPrefix("build:") { services[service]!.builds = true }
                if content.hasPrefix("command:") {
                    let list = content.dropFirst("command:".count).trimmingCharacters(in: .whitespaces)
                    services[service]!.command = list.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                        .split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"")) }
                }
                continue
            }
            if indent == 6, inEnvironment {
                let key = String(content.split(separator: ":")[0])
                if key == "<<" {
                    // `<<: *one` or `<<: [*one, *two]`
                    for anchor in content.split(separator: "*").dropFirst() {
                        let name = anchor.trimmingCharacters(in: CharacterSet(charactersIn: " ,]"))
                        services[service]!.environment.formUnion(anchors[name] ?? [])
                    }
                } else {
                    services[service]!.environment.insert(key)
                }
            }
        }
        return services
    }

    @Test func composeServicesAreOurExecutablesAndSetOnlyVariablesTheyRead() throws {
        let compose = try String(contentsOf: Self.root.appendingPathComponent("docker/docker-compose.yml"), encoding: .utf8)
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let products = Set(manifest.matches(of: /\.executable\(name: "([^"]+)"/).map { String($0.1) })
        let services = Self.parseCompose(compose)
        // The fake processors are development tools, not services: they only have to be ours.
        let fakes = ["fake-stripe", "fake-adyen"]
        for name in fakes {
            let fake = try #require(services[name])
            #expect(products.contains(fake.command.first ?? ""), "\(name) runs a product of Package.swift")
        }
        let ours = services.values.filter { $0.builds && !fakes.contains($0.name) }

        let readBy: [String: [String]] = [
            GatewayService.name: GatewayService.environmentKeys,
            PaymentCoreService.name: PaymentCoreService.environmentKeys,
            RecoverySchedulerService.name: RecoverySchedulerService.environmentKeys,
            WebhookDispatcherService.name: WebhookDispatcherService.environmentKeys,
        ]
        #expect(Set(ours.map(\.name)) == Set(readBy.keys), "compose must run each of the four services")
        for service in ours {
            let executable = try #require(service.command.first, "\(service.name) has no command")
            #expect(products.contains(executable), "\(service.name) runs \(executable), which Package.swift does not declare")
            let known = Set(ServiceConfiguration.environmentKeys + (readBy[executable] ?? []))
            let unknown = service.environment.subtracting(known)
            #expect(unknown.isEmpty, "\(service.name) sets variables no service reads: \(unknown.sorted())")
            #expect(service.environment.isSuperset(of: ["DATABASE_URL", "KAFKA_BROKERS"]), "\(service.name) lacks its connections")
        }
        // The infrastructure: Kafka in KRaft mode, clients on SASL/SCRAM only, ACLs enforced.
        let broker = try String(contentsOf: Self.root.appendingPathComponent("docker/kafka/start-broker.sh"), encoding: .utf8)
        #expect(broker.contains("process.roles=broker,controller") && !broker.contains("zookeeper"))
        #expect(broker.contains("listeners=SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093"))
        #expect(broker.contains("allow.everyone.if.no.acl.found=false") && broker.contains("StandardAuthorizer"))
        #expect(services["kafka"]?.environment.contains("KAFKA_ZOOKEEPER_CONNECT") == false)
        #expect(services["postgres"] != nil)
        // Each service logs in to Kafka as itself, over SASL.
        for service in ours {
            #expect(service.environment.isSuperset(of: ["KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]), "\(service.name) does not authenticate to Kafka")
        }
        let acls = try String(contentsOf: Self.root.appendingPathComponent("docker/kafka/init-acls.sh"), encoding: .utf8)
        for service in readBy.keys { #expect(acls.contains("\(service) paywire."), "no ACL for \(service)") }
    }

    /// Every credential comes from the environment with no fallback: `${VAR:?…}`, never a literal.
    @Test func composeShipsNoCredentials() throws {
        let compose = try String(contentsOf: Self.root.appendingPathComponent("docker/docker-compose.yml"), encoding: .utf8)
        for line in compose.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            let text = String(line)
            if text.contains("PASSWORD:") || text.contains("_KEY:") {
                #expect(text.contains("${") && text.contains(":?"), "a credential with a default: \(text)")
            }
            for match in text.matches(of: /\$\{([A-Z_]+)([^}]*)\}/) {
                #expect(String(match.2).hasPrefix(":?"), "\(match.1) has a fallback value")
            }
        }
        #expect(!compose.contains("test_admin") && !compose.contains("paywire:paywire@"))
        #expect(compose.contains("postgres://paywire:${POSTGRES_PASSWORD:?"))
    }

    @Test func theParserSeesAVariableNobodyReads() {
        let yaml = """
            services:
              gateway:
                build: .
                command: ["gateway"]
                environment:
                  NOT_A_SETTING: "1"
            """
        let parsed = Self.parseCompose(yaml)
        #expect(parsed["gateway"]?.environment == ["NOT_A_SETTING"])
        #expect(parsed["gateway"]?.command == ["gateway"])
    }
}
