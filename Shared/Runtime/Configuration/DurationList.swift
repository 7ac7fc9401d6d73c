/// A list of waits from configuration, e.g. `1s,2s,4s` (units `ms`, `s`, `m`, `h`, `d`; each at
/// most 30 days), as seconds. Retry ladders are given this way.
public enum DurationList {
    public struct ParseError: Error, CustomStringConvertible {
        public let key: String
        public let text: String
        public var description: String { "\(key): \"\(text)\" is not a list of waits like 1s,2s,4s (units ms, s, m, h, d)" }
    }

    public static func parse(_ text: String, key: String) throws -> [Double] {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var delays: [Double] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let (unit, scale) = units.first(where: { part.hasSuffix($0.0) && Double(part.dropLast($0.0.count)) != nil }),
                  let value = Double(part.dropLast(unit.count)), value >= 0, value * scale <= 30 * 86_400
            else { throw ParseError(key: key, text: text) }
            delays.append(value * scale)
        }
        guard !delays.isEmpty else { throw ParseError(key: key, text: text) }
        return delays
    }
}
