import PostgresNIO

extension PostgresRowSequence {
    /// Whether the query returned any row: `INSERT … ON CONFLICT DO NOTHING RETURNING 1` inserted,
    /// an `UPDATE … RETURNING` matched, a `SELECT 1` found. Reads the rows to the end, so the
    /// connection is free for the next statement.
    public func hasRows() async throws -> Bool {
        var any = false
        for try await _ in self { any = true }
        return any
    }
}
