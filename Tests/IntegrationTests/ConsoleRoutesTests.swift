import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing
@testable import Gateway

/// The console's sessions and forms in process, on a database of their own: the cookie's
/// attributes, CSRF refusals, a session that ends (its row moved past its end, not waited for),
/// sign-out, another merchant's ids, and the headers every page carries. The browser test runs the
/// same pages end to end; these pin each rule on its own.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: TestEnvironment.hasDatabase))
struct ConsoleRoutesTests {
    static let adminKey = GatewayRoutesTests.adminKey

    func withConsole(_ body: @Sendable (any TestClientProtocol, PostgresClient) async throws -> Void) async throws {
        try await GatewayRoutesTests().withGateway(console: true, body)
    }

    struct Page {
        var status: Int
        var headers: HTTPFields
        var body: String
        var location: String? { headers[.location] }
        func cookie(_ name: String) -> String? {
            headers[values: .setCookie].first { $0.hasPrefix(name + "=") }
        }
    }

    func send(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, cookies: [String: String] = [:],
              form: [(String, String)]? = nil, apiKey: String? = nil, json: String? = nil) async throws -> Page {
        var headers = HTTPFields()
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            body = ByteBuffer(string: form.map { "\($0.0)=\(StrictPercentEncoding.encode($0.1))" }.joined(separator: "&"))
        }
        if let apiKey { headers[.init("api-key")!] = apiKey }
        if let json { body = ByteBuffer(string: json) }
        return try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            Page(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// The value of a `name=value; …` Set-Cookie line.
    func value(_ line: String?) -> String? {
        line?.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init)
    }

    func merchant(_ client: any TestClientProtocol, _ id: String) async throws -> String {
        #expect(try await send(client, .post, "/accounts", apiKey: Self.adminKey, json: #"{"merchant_id": "\#(id)"}"#).status == 200)
        let key = try await send(client, .post, "/api_keys/\(id)", apiKey: Self.adminKey, json: #"{"name": "k"}"#)
        return try #require(try PaywireJSON.decoder.decode(JSONValue.self, from: Data(key.body.utf8))["api_key"]?.stringValue)
    }

    /// Signs in with `key`; the session cookie's value and its page's CSRF token.
    func signIn(_ client: any TestClientProtocol, key: String) async throws -> (session: String, csrf: String) {
        let form = try await send(client, .get, "/console/sign-in")
        let signInToken = try #require(value(form.cookie(Console.signInCookie)))
        let signedIn = try await send(client, .post, "/console/sign-in", cookies: [Console.signInCookie: signInToken], form: [("csrf_token", signInToken), ("api_key", key)])
        #expect(signedIn.status == 303, "\(signedIn.body)")
        let session = try #require(value(signedIn.cookie(Console.sessionCookie)))
        let page = try await send(client, .get, signedIn.location ?? "/console", cookies: [Console.sessionCookie: session])
        #expect(page.status == 200, "\(page.body)")
        let csrf = try #require(page.body.firstMatch(of: /name="csrf_token" value="([A-Za-z0-9]+)"/).map { String($0.1) })
        return (session, csrf)
    }

    @Test func signInSetsAStrictHttpOnlyCookieAndTheKeyStaysOnTheServer() async throws {
        try await withConsole { client, postgres in
            let key = try await merchant(client, "console_a")
            let signedOut = try await send(client, .get, "/console/endpoints")
            #expect(signedOut.status == 303 && signedOut.location == "/console/sign-in")

            let form = try await send(client, .get, "/console/sign-in")
            #expect(form.status == 200 && form.body.contains("name=\"api_key\""))
            let signInCookie = try #require(form.cookie(Console.signInCookie))
            #expect(signInCookie.contains("HttpOnly") && signInCookie.contains("SameSite=Strict") && !signInCookie.contains("Secure"))
            let token = try #require(value(signInCookie))

            // Without the sign-in form's token, or with another: refused, no session.
            for fields in [[("api_key", key)], [("csrf_token", "x"), ("api_key", key)]] {
                let refused = try await send(client, .post, "/console/sign-in", cookies: [Console.signInCookie: token], form: fields)
                #expect(refused.status == 403 && refused.cookie(Console.sessionCookie) == nil)
            }
            let bad = try await send(client, .post, "/console/sign-in", cookies: [Console.signInCookie: token], form: [("csrf_token", token), ("api_key", "dev_wrong")])
            #expect(bad.status == 401 && bad.body.contains("not a valid secret API key"))

            // Over TLS (as a proxy in front says), the cookie is Secure too.
            let signedIn = try await send(client, .post, "/console/sign-in", cookies: [Console.signInCookie: token], form: [("csrf_token", token), ("api_key", key)])
            let sessionCookie = try #require(signedIn.cookie(Console.sessionCookie))
            #expect(sessionCookie.contains("HttpOnly") && sessionCookie.contains("SameSite=Strict") && sessionCookie.contains("Path=/console"))
            #expect(signedIn.location == "/console/endpoints")
            // The row holds the token's hash and the key sealed, neither as given.
            let session = try #require(value(sessionCookie))
            let rows = try await postgres.query("SELECT token_hash, api_key FROM gateway.console_sessions", logger: TestEnvironment.logger("console", level: .error))
            for try await (hash, sealed) in rows.decode((String, String).self) {
                #expect(hash == ConsoleSessionStore.hash(session) && hash != session)
                #expect(sealed.hasPrefix("v2:") && !sealed.contains(key))
            }
        }
    }

    @Test func everyFormNeedsItsSessionsTokenAndEveryPageItsHeaders() async throws {
        try await withConsole { client, _ in
            let key = try await merchant(client, "console_b")
            let (session, csrf) = try await signIn(client, key: key)
            let cookies = [Console.sessionCookie: session]
            let page = try await send(client, .get, "/console/endpoints", cookies: cookies)
            #expect(page.headers[.init("content-security-policy")!] == ConsoleMiddleware.contentSecurityPolicy)
            #expect(page.headers[.cacheControl] == "no-store" && page.headers[.init("x-frame-options")!] == "DENY")
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let profile = try #require(page.body.firstMatch(of: /<option value="([^"]+)">/).map { String($0.1) })

            let fields = [("profile_id", profile), ("webhook_url", "https://example.com/hooks"), ("events", "payment_succeeded")]
            for token in [nil, "x" + csrf.dropFirst()] as [String?] {
                let refused = try await send(client, .post, "/console/endpoints", cookies: cookies, form: fields + (token.map { [("csrf_token", $0)] } ?? []))
                #expect(refused.status == 403 && refused.body.contains("CSRF"))
            }
            #expect(try await send(client, .get, "/account/console_b/business_profile/\(profile)/webhooks", apiKey: key).body == "[]")
            let created = try await send(client, .post, "/console/endpoints", cookies: cookies, form: fields + [("csrf_token", csrf)])
            #expect(created.status == 200 && created.body.contains("whsec_"), "\(created.body)")
            // A bad URL is the API's own message, naming the field, on the page.
            let refused = try await send(client, .post, "/console/endpoints", cookies: cookies, form: [("profile_id", profile), ("webhook_url", "ftp://x"), ("csrf_token", csrf)])
            #expect(refused.status == 400 && refused.body.contains("webhook_url"), "\(refused.body)")
        }
    }

    @Test func anotherMerchantsIdsAreNotFoundAndAnEndedSessionSignsNoOneIn() async throws {
        try await withConsole { client, postgres in
            let keyA = try await merchant(client, "console_c")
            let keyB = try await merchant(client, "console_d")
            let profileA = try #require(try PaywireJSON.decoder.decode(JSONValue.self, from: Data(try await send(client, .get, "/accounts/console_c", apiKey: keyA).body.utf8))["default_profile"]?.stringValue)
            let endpoint = try await send(client, .post, "/account/console_c/business_profile/\(profileA)/webhooks", apiKey: keyA,
                                          json: #"{"webhook_url": "https://example.com/a", "events": ["payment_succeeded"]}"#)
            let endpointId = try #require(try PaywireJSON.decoder.decode(JSONValue.self, from: Data(endpoint.body.utf8))["webhook_endpoint_id"]?.stringValue)

            let (sessionB, csrfB) = try await signIn(client, key: keyB)
            let cookiesB = [Console.sessionCookie: sessionB]
            let foreign = try await send(client, .get, "/console/endpoints/\(profileA)/\(endpointId)", cookies: cookiesB)
            #expect(foreign.status == 404 && foreign.body.contains("not found"))
            let change = try await send(client, .post, "/console/endpoints/\(profileA)/\(endpointId)/disable", cookies: cookiesB, form: [("csrf_token", csrfB)])
            #expect(change.status == 404)
            let stillActive = try await send(client, .get, "/account/console_c/business_profile/\(profileA)/webhooks/\(endpointId)", apiKey: keyA)
            #expect(stillActive.body.contains(#""status":"active""#), "\(stillActive.body)")
            // An id that could never be one is the API's 400, as a page.
            #expect(try await send(client, .get, "/console/payments/\(String(repeating: "p", count: 80))", cookies: cookiesB).status == 400)

            // Sign-out ends the session; its cookie opens nothing after.
            let out = try await send(client, .post, "/console/sign-out", cookies: cookiesB, form: [("csrf_token", csrfB)])
            #expect(out.status == 303 && out.location == "/console/sign-in")
            #expect(try await send(client, .get, "/console/endpoints", cookies: cookiesB).location == "/console/sign-in")

            // A session past its end: its row moved back rather than a wait.
            let (sessionA, _) = try await signIn(client, key: keyA)
            #expect(try await send(client, .get, "/console/endpoints", cookies: [Console.sessionCookie: sessionA]).status == 200)
            try await postgres.query("UPDATE gateway.console_sessions SET expires_at = now() - interval '1 second'", logger: TestEnvironment.logger("console", level: .error))
            #expect(try await send(client, .get, "/console/endpoints", cookies: [Console.sessionCookie: sessionA]).location == "/console/sign-in")

            // A revoked key ends its session on the next page.
            let (sessionA2, _) = try await signIn(client, key: keyA)
            let keys = try PaywireJSON.decoder.decode(JSONValue.self, from: Data(try await send(client, .get, "/api_keys/console_c/list", apiKey: Self.adminKey).body.utf8))
            guard case .array(let list) = keys else { Issue.record("no key list"); return }
            for item in list { _ = try await send(client, .delete, "/api_keys/console_c/\(item["key_id"]?.stringValue ?? "")", apiKey: Self.adminKey) }
            #expect(try await send(client, .get, "/console/endpoints", cookies: [Console.sessionCookie: sessionA2]).location == "/console/sign-in")
        }
    }
}
