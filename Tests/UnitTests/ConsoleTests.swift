import Foundation
@testable import Gateway
import PaywireModels
import Testing

/// The console's pieces that need nothing running: its templates escape what they show, forms
/// parse as browsers send them, credentials in headers are masked, and tokens compare whole.
struct ConsoleTests {
    @Test func everyTemplateParsesAndEscapesWhatItShows() throws {
        #expect(ConsoleTemplates.library.getTemplate(named: "layout") != nil)
        for name in ConsoleTemplates.templates.keys where name != "layout" {
            #expect(ConsoleTemplates.library.render(["title": "t"], withTemplate: name) != nil, "\(name) does not render")
        }
        let hostile = "<script>alert('x')</script>\"&"
        let fields = Console.fields(.object(["description": .string(hostile), "client_secret": .string("pay_secret_1"), "metadata": .object(["note": .string(hostile)])]))
        let html = try #require(ConsoleTemplates.library.render(["title": hostile, "paymentId": "pay_1", "fields": fields, "refunds": [] as [Any]], withTemplate: "payment"))
        #expect(!html.contains("<script>"), "markup reached the page unescaped")
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;") || html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;"))
        #expect(!html.contains("pay_secret_1"), "the client secret is shown")
        #expect(!html.contains(" style=") && !html.contains("<style"), "inline style, which the policy forbids")
    }

    @Test func formsParseAsBrowsersSendThem() throws {
        let form = try ConsoleForm(body: "csrf_token=abc&events=payment_succeeded&events=refund_failed&webhook_url=https%3A%2F%2Fexample.com%2Fa+b&empty=")
        #expect(form["csrf_token"] == "abc")
        #expect(form.all("events") == ["payment_succeeded", "refund_failed"])
        #expect(form["webhook_url"] == "https://example.com/a b")
        #expect(form["empty"] == nil && form["missing"] == nil)
        #expect(throws: (any Error).self) { try ConsoleForm(body: "name=%E0%A4%A") }
        #expect(throws: (any Error).self) { try form.required("missing") }
    }

    @Test func headersThatCarryCredentialsAreMasked() {
        #expect(ConsoleMasking.mask(header: "Set-Cookie", value: "session=1") == "•••• (masked)")
        #expect(ConsoleMasking.mask(header: "Authorization", value: "Bearer x") == "•••• (masked)")
        #expect(ConsoleMasking.mask(header: "X-Shop-Token", value: "t") == "•••• (masked)")
        #expect(ConsoleMasking.mask(header: "webhook-signature", value: "v1,abc") == "v1,abc")
        #expect(ConsoleMasking.mask(header: "Content-Type", value: "application/json") == "application/json")
        #expect(ConsoleMasking.mask(header: "Date", value: "today") == "today")
    }

    @Test func tokensCompareWholeAndSessionTokensAreWellFormed() {
        #expect(Console.sameSecret("abc", "abc"))
        #expect(!Console.sameSecret("abd", "abc") && !Console.sameSecret("ab", "abc") && !Console.sameSecret(nil, "abc") && !Console.sameSecret("", "abc"))
        let token = Identifier.random(43)
        #expect(ConsoleSessionStore.isWellFormed(token))
        #expect(!ConsoleSessionStore.isWellFormed(token + "x") && !ConsoleSessionStore.isWellFormed(String(token.dropLast()) + "'"))
        #expect(ConsoleSessionStore.hash(token) != token && ConsoleSessionStore.hash(token).count == 64)
    }

    @Test func thePolicyAllowsNoScriptAndNoFraming() {
        let policy = ConsoleMiddleware.contentSecurityPolicy
        #expect(policy.contains("default-src 'none'") && !policy.contains("script-src") && !policy.contains("unsafe-inline"))
        #expect(policy.contains("frame-ancestors 'none'") && policy.contains("form-action 'self'"))
    }

    @Test func aRecoverTimeIsReadAsUTC() throws {
        #expect(try Console.parseLocalInput("2026-12-01T10:20", field: "since") == PaywireJSON.parse("2026-12-01T10:20:00Z"))
        #expect(try Console.parseLocalInput("2026-12-01T10:20:30", field: "since") == PaywireJSON.parse("2026-12-01T10:20:30Z"))
        #expect(throws: (any Error).self) { try Console.parseLocalInput("yesterday", field: "since") }
        #expect(Console.localInput(try #require(PaywireJSON.parse("2026-12-01T10:20:30.123Z"))) == "2026-12-01T10:20:30")
    }
}
