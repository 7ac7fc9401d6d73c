import Testing
@testable import PaywireStore

@Suite struct SQLStatementSplitterTests {
    @Test func splitsOnSemicolonsOutsideQuotesCommentsAndDollarBodies() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (v TEXT DEFAULT 'a;b');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            DO $$ BEGIN PERFORM 1; END $$;
            SELECT 1
            """
        let statements = SQLStatementSplitter.split(script)
        #expect(statements.count == 4)
        #expect(statements[0] == "CREATE TABLE t (v TEXT DEFAULT 'a;b')")
        #expect(statements[1].hasSuffix("$body$ SELECT 1; $body$ LANGUAGE sql"))
        #expect(statements[2] == "DO $$ BEGIN PERFORM 1; END $$")
        #expect(statements[3] == "SELECT 1")
    }
}
