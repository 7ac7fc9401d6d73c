import Hummingbird
import NIOCore

/// The routes a router serves, by path template, so a known path asked with a method it does not
/// serve answers 405 with `Allow` (RFC 9110) instead of the router's 404.
public struct RouteTable: Sendable {
    struct Template: Sendable {
        var components: [Substring]
        var methods: Set<String>
    }

    let templates: [Template]

    public init(_ routes: [(path: String, method: String)]) {
        var byPath: [String: Set<String>] = [:]
        for route in routes {
            let path = route.path.hasPrefix("/") ? route.path : "/" + route.path
            byPath[path, default: []].insert(route.method.uppercased())
        }
        templates = byPath.map { Template(components: $0.key.split(separator: "/"), methods: $0.value) }
    }

    /// Methods served at this concrete path, or nil when no route has it.
    /// As the router's trie resolves: a literal component wins over a parameter at the first
    /// place they differ (`/api_keys/{id}/list` is not `/api_keys/{id}/{key_id}`).
    public func methods(for path: String) -> Set<String>? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var best: [Bool]?
        var found: Set<String>?
        for template in templates where template.components.count == parts.count {
            var literal: [Bool] = []
            let matches = zip(template.components, parts).allSatisfy { pattern, part in
                let isParameter = pattern.hasPrefix(":") || (pattern.hasPrefix("{") && pattern.hasSuffix("}")) || pattern == "*"
                literal.append(!isParameter)
                return isParameter || pattern == part
            }
            guard matches else { continue }
            if literal == best {
                found = (found ?? []).union(template.methods)
            } else if best.map({ $0.lexicographicallyPrecedes(literal) { !$0 && $1 } }) ?? true {
                best = literal
                found = template.methods
            }
        }
        return found
    }
}

/// Answers 405 with `Allow` for a path some route serves under other methods; everything else goes
/// to the router as it is.
public struct MethodCheckingResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == PaywireRequestContext {
    let inner: Inner
    let routes: RouteTable

    public init(inner: Inner, routes: RouteTable) {
        self.inner = inner
        self.routes = routes
    }

    public func respond(to request: Request, context: PaywireRequestContext) async throws -> Response {
        var method = request.method.rawValue
        if method == "HEAD" { method = "GET" }
        if let allowed = routes.methods(for: request.uri.path), !allowed.contains(method) {
            let error = APIError(
                status: .methodNotAllowed, type: "invalid_request", code: "IR_00",
                message: "Method \(request.method.rawValue) is not allowed here; allowed: \(allowed.sorted().joined(separator: ", "))", field: nil
            )
            var response = try error.response(from: request, context: context)
            response.headers[.allow] = allowed.sorted().joined(separator: ", ")
            return response
        }
        return try await inner.respond(to: request, context: context)
    }
}
