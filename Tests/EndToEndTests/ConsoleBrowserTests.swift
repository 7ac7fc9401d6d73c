import Foundation
import PaywireTestSupport
import Testing

/// The console in a real headless browser: Debian's Chromium and chromedriver driven by Selenium
/// (`Tests/Browser/console_browser_test.py`, which says what it checks) against a whole stack with
/// the fake Stripe. This test makes what the browser needs (two merchants, a Stripe account, an
/// open dispute) and runs the script; its screenshots are what the README shows.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestEnvironment.hasDatabase))
struct ConsoleBrowserTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func aMerchantWorksThroughTheConsoleAndAnotherSeesNoneOfIt() async throws {
        let script = Self.root.appendingPathComponent("Tests/Browser/console_browser_test.py").path
        let tools = try await runProgramOffPool("/usr/bin/env", ["python3", "-c", "import selenium"]).status == 0
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        guard tools else {
            // ./scripts/test installs them; anywhere else a missing browser is said, not hidden.
            #expect(!TestEnvironment.servicesRequired, "chromium, chromedriver and selenium are needed (./scripts/test installs them)")
            return
        }
        // No automatic retry comes while the page retries by hand: the first is an hour away.
        // Recovery retries come a second apart, so a job has run its course before the browser starts.
        let environment = ["PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1h"].merging(RecoveryTests.environment) { $1 }
        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_console", webhookURL: nil)
            let stripe = try await stack.createStripeAccount(merchantId: "merchant_console", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)/webhooks/merchant_console/stripe").id
            let otherKey = try await stack.createMerchant("merchant_console_other", webhookURL: nil)

            // A recovery job on the saved card: declined twice, then charged (the fake Stripe's
            // token says so), its attempts and final event for the recovery page.
            let recovery = RecoveryTests()
            let profile = try #require(try await stack.request(.GET, "/accounts/merchant_console").json?["default_profile"] as? String)
            let merchant = RecoveryTests.Merchant(id: "merchant_console", apiKey: apiKey, profile: profile, paymentAccount: stripe)
            #expect(try await stack.request(.PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#, headers: merchant.headers).status == 200)
            let billing = try await recovery.billingAccount(stack, merchant, maxRetries: 9, threshold: 0)
            let jobId = try #require(try await recovery.report(stack, merchant, billing: billing, reference: "inv_console", token: "pm_paywire_decline2x_insufficient_funds").json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(120)) { (try? await recovery.job(stack, merchant, jobId))?["status"] as? String == "succeeded" }, "\(stack.logs("recovery-scheduler"))")

            // An open dispute: a chargeback on a succeeded payment, raised at the fake Stripe.
            let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 3100))
            let paymentId = try #require(payment.json?["payment_id"] as? String, "\(payment.body)")
            let raised = try await stack.request(.POST, "/_fake/disputes", service: "fake-stripe", apiKey: nil, body: #"{"payment_id": "\#(paymentId)"}"#)
            #expect(raised.status == 200, "\(raised.body)")
            var disputeId: String?
            #expect(await eventually(timeout: .seconds(60)) {
                let list = try? await stack.request(.GET, "/disputes/list", apiKey: apiKey)
                let disputes = (try? JSONSerialization.jsonObject(with: Data((list?.body ?? "[]").utf8)) as? [[String: Any]]) ?? []
                disputeId = disputes.first { $0["payment_id"] as? String == paymentId }?["dispute_id"] as? String
                return disputeId != nil
            }, "\(stack.logs("payment-core"))")
            let dispute = try #require(disputeId)

            let screenshots = ProcessInfo.processInfo.environment["PAYWIRE_CONSOLE_SCREENSHOTS"] ?? Self.root.appendingPathComponent(".paywire/console-screenshots").path
            var browser = ProcessInfo.processInfo.environment
            browser["PAYWIRE_GATEWAY_URL"] = stack.gatewayURL
            browser["PAYWIRE_MERCHANT_ID"] = "merchant_console"
            browser["PAYWIRE_MERCHANT_KEY"] = apiKey
            browser["PAYWIRE_OTHER_MERCHANT_KEY"] = otherKey
            browser["PAYWIRE_ADMIN_KEY"] = PaywireStack.adminKey
            browser["PAYWIRE_DISPUTE_ID"] = dispute
            browser["PAYWIRE_RECOVERY_JOB_ID"] = jobId
            browser["PAYWIRE_CONSOLE_SCREENSHOTS"] = screenshots
            let run = try await runProgramOffPool("/usr/bin/env", ["python3", script], environment: browser)
            #expect(run.status == 0, "\(run.output)\ngateway:\n\(stack.logs("gateway"))\ndispatcher:\n\(stack.logs("webhook-dispatcher"))")
            for page in ["sign-in", "endpoints", "endpoint", "endpoint-secret", "events", "delivery-failed", "delivery-retried", "payments", "payment", "disputes", "dispute", "recovery", "operator"] {
                #expect(FileManager.default.fileExists(atPath: "\(screenshots)/\(page).png"), "no screenshot of \(page)")
            }
        }
    }
}
