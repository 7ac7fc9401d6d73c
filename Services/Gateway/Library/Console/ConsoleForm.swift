import Foundation
import Hummingbird
import NIOCore
import PaywireRuntime

/// A submitted HTML form (`application/x-www-form-urlencoded`): every value of every name, in
/// order (a group of checkboxes sends one name many times).
struct ConsoleForm: Sendable, Equatable {
    var values: [String: [String]]

    init(values: [String: [String]]) { self.values = values }

    /// Parses a form body; a body that is not valid percent-encoded UTF-8 is refused naming the
    /// first field at fault.
    init(body: String) throws {
        var values: [String: [String]] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else { throw APIError.invalid("form", "is not validly percent-encoded") }
            guard let value = parts.count > 1 ? Self.decode(parts[1]) : "" else { throw APIError.invalid(name, "is not validly percent-encoded") }
            values[name, default: []].append(value)
        }
        self.values = values
    }

    static func read(_ request: Request, context: PaywireRequestContext) async throws -> ConsoleForm {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        return try ConsoleForm(body: String(buffer: buffer))
    }

    static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// The first value of a field, trimmed; nil when absent or empty.
    subscript(_ name: String) -> String? {
        guard let value = values[name]?.first?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    func all(_ name: String) -> [String] { values[name] ?? [] }

    func required(_ name: String) throws -> String {
        guard let value = self[name] else { throw APIError.invalid(name, "is required", code: "IR_05") }
        return value
    }
}
