import Foundation
import PaywireTestSupport
import Testing

/// schemathesis (PyPI) over the gateway's own OpenAPI document, every check on, once with the admin
/// key and once with a merchant's key (whose paths name that merchant and its default profile so
/// the cases reach past the 404s). Any failure fails the suite and prints schemathesis' report
/// with the case to replay. Generated URLs are held to a discard port on loopback
/// (`scripts/schemathesis-run`), so whatever the dispatcher sends (it runs, for the events log) goes
/// nowhere off the machine.
@Suite(.serialized, .timeLimit(.minutes(15)), .enabled(if: TestEnvironment.hasDatabase))
struct SchemathesisTests {
    /// Examples per operation and phase: enough to walk every schema branch, bounded for the
    /// suite's time (about two minutes a run on two cores).
    static let maxExamples = Int(ProcessInfo.processInfo.environment["PAYWIRE_SCHEMATHESIS_EXAMPLES"] ?? "") ?? 10

    @Test func theGatewayDoesExactlyWhatItsOpenAPIDocumentSays() async throws {
        try await HeavyTests.gate.exclusive { try await run() }
    }

    func run() async throws {
        try await PaywireStack.with(services: ["payment-core", "webhook-dispatcher", "recovery-scheduler", "gateway"], extraEnvironment: ["PAYWIRE_REPLY_TIMEOUT_MS": "3000"]) { stack in
            let apiKey = try await stack.createMerchant("schemathesis_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "schemathesis_m", apiKey: apiKey)
            let profileId = try #require(try await stack.request(.GET, "/accounts/schemathesis_m").json?["default_profile"] as? String)

            // The two runs at once (they touch different merchants): the suite's longest wait halves.
            async let merchantTask = run(stack, apiKey: apiKey, parameters: ["path.merchant_id=schemathesis_m", "path.profile_id=\(profileId)"])
            async let adminTask = run(stack, apiKey: PaywireStack.adminKey, parameters: [])
            let (merchantRun, adminRun) = try await (merchantTask, adminTask)
            #expect(merchantRun.status == 0, "schemathesis with a merchant key:\n\(merchantRun.output)")
            #expect(adminRun.status == 0, "schemathesis with the admin key:\n\(adminRun.output)")
            for line in (merchantRun.output + adminRun.output).split(separator: "\n") where line.contains("generated,") || line.contains(" passed") && line.contains("=====") || line.contains("API Links") || line.contains("Scenarios") {
                print("schemathesis: \(line.trimmingCharacters(in: .whitespaces))")
            }
            // Whatever schemathesis sent, no service answered 500 or logged an unhandled error.
            #expect(!stack.allLogs().contains("unhandled error"))
        }
    }

    func run(_ stack: PaywireStack, apiKey: String, parameters: [String]) async throws -> (status: Int32, output: String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/schemathesis-run")
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment["SCHEMATHESIS_TELEMETRY"] = "false"
        return try await runProgramOffPool("/usr/bin/env", ["python3", script.path, "--url", stack.gatewayURL, "--api-key", apiKey, "--max-examples", String(Self.maxExamples)]
            + parameters.flatMap { ["--parameter", $0] }, environment: environment)
    }
}
