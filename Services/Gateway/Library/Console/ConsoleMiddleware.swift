import Hummingbird
import Logging
import PaywireRuntime
import PaywireStore

/// Every console answer: a failure becomes a page (never the API's JSON), and each answer carries
/// the headers that keep the pages to themselves — a Content-Security-Policy with no script and no
/// inline style, no framing, no sniffing, no caching, no referrer.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = PaywireRequestContext
    let logger: Logger

    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: PaywireRequestContext, next: (Request, PaywireRequestContext) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let redirect as ConsoleRedirect {
            response = redirect.response
        } catch let error as ConsolePageError {
            response = Self.errorPage(status: error.status, text: error.text)
        } catch let error as APIError {
            // Input the console could not use (a malformed id in the path, a bad form): the API's
            // own message, which names the field.
            response = Self.errorPage(status: error.status, text: error.field.map { "\($0): \(error.message)" } ?? error.message)
        } catch let error as HTTPError {
            response = Self.errorPage(status: error.status, text: error.status == .notFound ? "There is no such page." : error.status.reasonPhrase)
        } catch where MessageFailure.classify(error) == .transient {
            context.logger.warning("console page failed on a fault that passes", metadata: ["error": .string(MessageFailure.loggable(error))])
            response = Self.errorPage(status: .serviceUnavailable, text: "Paywire is briefly unavailable; reload the page in a moment.")
        } catch {
            context.logger.error("console page failed", metadata: ["error": .string(String(describing: type(of: error)))])
            response = Self.errorPage(status: .internalServerError, text: "Something went wrong.")
        }
        response.headers[.init("content-security-policy")!] = Self.contentSecurityPolicy
        response.headers[.init("x-content-type-options")!] = "nosniff"
        response.headers[.init("x-frame-options")!] = "DENY"
        response.headers[.init("referrer-policy")!] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }

    static func errorPage(status: HTTPResponse.Status, text: String) -> Response {
        let values: [String: Any] = ["title": status.code == 404 ? "Not found" : "Cannot do that", "text": text, "back": "/console"]
        let html = ConsoleTemplates.library.render(values, withTemplate: "message") ?? "<!doctype html><title>Error</title>"
        return Console.html(html, status: status)
    }
}

/// Sends the browser to another console page (303: the next request is a GET).
struct ConsoleRedirect: Error {
    let location: String

    var response: Response { Self.to(location) }

    static func to(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}

/// A console request that cannot be served, with the text the page shows.
struct ConsolePageError: Error {
    let status: HTTPResponse.Status
    let text: String

    static let csrf = ConsolePageError(status: .forbidden, text: "The form's CSRF token is missing or wrong: reload the page and send it again.")
}

/// Header values that carry credentials, masked on the console's pages: what an endpoint answers
/// (a session cookie, a token) and what a merchant's custom headers hold is theirs, not the page's.
enum ConsoleMasking {
    static let names: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "api-key", "x-api-key"]
    static let fragments = ["secret", "token", "password", "auth", "key", "session"]

    static func mask(header name: String, value: String) -> String {
        let lowered = name.lowercased()
        // Paywire's own signature headers are not secret: they are what a receiver checks.
        if lowered.hasPrefix("webhook-") || lowered == "x-webhook-signature-512" || lowered == "content-type" { return value }
        if names.contains(lowered) || fragments.contains(where: lowered.contains) { return value == "***" ? value : "•••• (masked)" }
        return value
    }
}
