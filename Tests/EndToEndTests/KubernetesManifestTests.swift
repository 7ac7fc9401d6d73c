import Foundation
import PaywireTestSupport
import Testing

/// The Kubernetes manifests, rendered by kubectl's own kustomize and checked against the
/// Kubernetes API schemas offline by `kubernetes-validate` (no cluster runs here); then what the
/// deployment needs, read from the rendered resources.
@Suite(.timeLimit(.minutes(3)), .enabled(if: TestEnvironment.servicesRequired))
struct KubernetesManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let services = ["gateway", "payment-core", "recovery-scheduler", "webhook-dispatcher"]

    /// Runs a shell pipeline from the repository root.
    func shell(_ script: String) throws -> (status: Int32, output: String) {
        try runProgram("/bin/bash", ["-c", "cd '\(Self.root.path)' && \(script)"])
    }

    /// The rendered resources as JSON objects (through PyYAML, which kubernetes-validate uses).
    func resources(_ kustomization: String) throws -> [[String: Any]] {
        let toJSON = "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"
        let (status, output) = try shell("kubectl kustomize \(kustomization) | python3 -c '\(toJSON)'")
        #expect(status == 0, "\(output)")
        let start = try #require(output.firstIndex(of: "["), "\(output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]])
    }

    func find(_ resources: [[String: Any]], _ kind: String, _ name: String) -> [String: Any]? {
        resources.first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name }
    }

    @Test(arguments: ["deploy/kubernetes/base", "deploy/kubernetes/overlays/local"])
    func theManifestsRenderAndMatchTheKubernetesSchemas(kustomization: String) throws {
        let validated = try shell("set -o pipefail; kubectl kustomize \(kustomization) | kubernetes-validate --strict -")
        #expect(validated.status == 0, "\(validated.output)")
        #expect(!validated.output.contains("ERROR"), "\(validated.output)")

        let resources = try resources(kustomization)
        #expect(!resources.contains { $0["kind"] as? String == "Secret" }, "secrets are referenced, never written in the manifests")
        for service in Self.services {
            let deployment = try #require(find(resources, "Deployment", service), "\(service) has a Deployment")
            let spec = try #require(deployment["spec"] as? [String: Any])
            #expect((spec["replicas"] as? Int ?? 0) >= 2, "\(service) runs replicas")
            let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
            let container = try #require((pod["containers"] as? [[String: Any]])?.first)
            func probePath(_ name: String) -> String? { ((container[name] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String }
            #expect(probePath("readinessProbe") == "/ready" && probePath("livenessProbe") == "/health", "\(service) probes")
            let requests = (container["resources"] as? [String: Any])?["requests"] as? [String: Any]
            #expect(requests?["cpu"] != nil && requests?["memory"] != nil, "\(service) requests resources")
            // Credentials only by reference: no literal value for anything secret.
            for variable in container["env"] as? [[String: Any]] ?? [] {
                let name = variable["name"] as? String ?? ""
                let secretLike = ["PASSWORD", "_KEY", "DATABASE_URL", "SECRET"].contains { name.contains($0) }
                #expect(!(secretLike && variable["value"] != nil), "\(service) sets \(name) in the clear")
            }
            let sources = (container["envFrom"] as? [[String: Any]] ?? []).compactMap { ($0["secretRef"] as? [String: Any])?["name"] as? String }
            #expect(Set(sources) == ["paywire-shared", "paywire-\(service)"], "\(service) reads \(sources)")
            #expect(find(resources, "PodDisruptionBudget", service) != nil, "\(service) has a PodDisruptionBudget")
            let autoscaler = try #require(find(resources, "HorizontalPodAutoscaler", service), "\(service) has an autoscaler")
            #expect(((autoscaler["spec"] as? [String: Any])?["scaleTargetRef"] as? [String: Any])?["name"] as? String == service)
        }
        #expect(find(resources, "Service", "gateway") != nil)

        // Only payment-core reaches the card vault (8090); the snapshot (8091) only the services
        // that rebuild from it; the public port anyone.
        let policy = try #require(find(resources, "NetworkPolicy", "gateway"))
        let rules = try #require((policy["spec"] as? [String: Any])?["ingress"] as? [[String: Any]])
        func sources(port: Int) -> Set<String>? {
            var names = Set<String>()
            for rule in rules where (rule["ports"] as? [[String: Any]] ?? []).contains(where: { $0["port"] as? Int == port }) {
                guard let from = rule["from"] as? [[String: Any]] else { return nil }  // from anywhere
                for peer in from {
                    names.insert(((peer["podSelector"] as? [String: Any])?["matchLabels"] as? [String: Any])?["app.kubernetes.io/name"] as? String ?? "?")
                }
            }
            return names
        }
        #expect(sources(port: 8090) == ["payment-core"])
        #expect(sources(port: 8091) == ["payment-core", "webhook-dispatcher", "recovery-scheduler"])
        #expect(sources(port: 8080) == nil)
    }

    /// `./scripts/kube-secrets` makes exactly the Secrets the manifests read, valid, with fresh
    /// values each run.
    @Test func theSecretsScriptMakesEverySecretTheManifestsRead() throws {
        let toJSON = "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"
        let first = try shell("set -o pipefail; scripts/kube-secrets 2>/dev/null | python3 -c '\(toJSON)'")
        let second = try shell("scripts/kube-secrets 2>/dev/null")
        #expect(first.status == 0 && second.status == 0, "\(first.output)")
        let validated = try shell("set -o pipefail; scripts/kube-secrets 2>/dev/null | kubernetes-validate --strict -")
        #expect(validated.status == 0, "\(validated.output)")
        let start = try #require(first.output.firstIndex(of: "["))
        let secrets = try #require(try JSONSerialization.jsonObject(with: Data(first.output[start...].utf8)) as? [[String: Any]])
        let names = Set(secrets.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String })
        #expect(names == Set(["paywire-shared", "paywire-postgres"] + Self.services.map { "paywire-\($0)" }))
        let values = secrets.flatMap { (($0["stringData"] as? [String: String]) ?? [:]).values }
        #expect(values.allSatisfy { !second.output.contains($0) }, "fresh values each run")
        let shared = secrets.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "paywire-shared" }?["stringData"] as? [String: String]
        #expect(Data(base64Encoded: shared?["PAYWIRE_ENCRYPTION_KEY"] ?? "")?.count == 32)
        // The dispatcher never holds the command-signing key (it sends no commands).
        let dispatcher = secrets.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "paywire-webhook-dispatcher" }?["stringData"] as? [String: String]
        #expect(dispatcher?.keys.sorted() == ["DATABASE_URL"])
    }
}
