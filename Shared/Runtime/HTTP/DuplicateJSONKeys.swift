import Foundation

/// Finds a key that stands twice in one JSON object. JSON parsers disagree on
/// `{"amount": 1000, "amount": 5}` — Foundation keeps the first, most others the last — so a body
/// that a proxy, a log or the merchant's own code reads differently from Paywire is refused rather
/// than guessed at. Run on text that has already parsed, so its structure is valid.
public enum DuplicateJSONKeys {
    private enum Frame {
        case object(path: String, keys: Set<String>, expectingKey: Bool, currentKey: String?)
        case array(path: String, index: Int)
    }

    /// The path of the first repeated key (`amount`, `billing.address.city`,
    /// `items[2].name`), or nil.
    public static func firstRepeated(in data: Data) -> String? {
        var stack: [Frame] = []
        var stringStart: Int?
        var escaped = false
        let bytes = [UInt8](data)

        func childPath() -> String {
            switch stack.last {
            case .object(let path, _, _, let key)?: return path.isEmpty ? (key ?? "") : path + "." + (key ?? "")
            case .array(let path, let index)?: return path + "[\(index)]"
            case nil: return ""
            }
        }

        for (offset, byte) in bytes.enumerated() {
            if let start = stringStart {
                if escaped { escaped = false; continue }
                if byte == 0x5C { escaped = true; continue }
                guard byte == 0x22 else { continue }
                stringStart = nil
                guard case .object(let path, var keys, true, _)? = stack.last else { continue }
                // The key as the parser reads it (escapes resolved), so `"a"` and `"\u0061"` match.
                let raw = Data(bytes[start...offset])
                let key = (try? JSONDecoder().decode(String.self, from: raw)) ?? String(decoding: raw, as: UTF8.self)
                if keys.contains(key) { return path.isEmpty ? key : path + "." + key }
                keys.insert(key)
                stack[stack.count - 1] = .object(path: path, keys: keys, expectingKey: false, currentKey: key)
                continue
            }
            switch byte {
            case 0x22: stringStart = offset
            case 0x7B: stack.append(.object(path: childPath(), keys: [], expectingKey: true, currentKey: nil))
            case 0x5B: stack.append(.array(path: childPath(), index: 0))
            case 0x7D, 0x5D: _ = stack.popLast()
            case 0x2C:
                switch stack.last {
                case .object(let path, let keys, _, let key)?: stack[stack.count - 1] = .object(path: path, keys: keys, expectingKey: true, currentKey: key)
                case .array(let path, let index)?: stack[stack.count - 1] = .array(path: path, index: index + 1)
                case nil: break
                }
            default: break
            }
        }
        return nil
    }
}
