/// Splits a migration script into single statements: PostgreSQL's extended protocol, which
/// postgres-nio speaks, takes one statement per query. Semicolons inside quotes, dollar-quoted
/// bodies and comments do not split.
enum SQLStatementSplitter {
    static func split(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var index = sql.startIndex
        var dollarTag: String?
        var inSingleQuote = false
        var inLineComment = false

        func peek(_ offset: Int) -> Character? {
            guard let position = sql.index(index, offsetBy: offset, limitedBy: sql.endIndex), position < sql.endIndex else { return nil }
            return sql[position]
        }

        while index < sql.endIndex {
            let character = sql[index]
            if inLineComment {
                if character == "\n" { inLineComment = false; current.append(character) }
                index = sql.index(after: index)
                continue
            }
            if let tag = dollarTag {
                if sql[index...].hasPrefix(tag) {
                    current += tag
                    index = sql.index(index, offsetBy: tag.count)
                    dollarTag = nil
                } else {
                    current.append(character)
                    index = sql.index(after: index)
                }
                continue
            }
            if inSingleQuote {
                current.append(character)
                if character == "'" { inSingleQuote = false }
                index = sql.index(after: index)
                continue
            }
            switch character {
            case "-" where peek(1) == "-":
                inLineComment = true
            case "'":
                inSingleQuote = true
                current.append(character)
            case "$":
                // $tag$ ... $tag$ (tag may be empty).
                let rest = sql[sql.index(after: index)...]
                if let close = rest.firstIndex(of: "$"), rest[rest.startIndex..<close].allSatisfy({ $0.isLetter || $0 == "_" }) {
                    let tag = String(sql[index...close])
                    dollarTag = tag
                    current += tag
                    index = sql.index(after: close)
                    continue
                }
                current.append(character)
            case ";":
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { statements.append(statement) }
                current = ""
            default:
                current.append(character)
            }
            index = sql.index(after: index)
        }
        let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !statement.isEmpty { statements.append(statement) }
        return statements
    }
}

import Foundation
