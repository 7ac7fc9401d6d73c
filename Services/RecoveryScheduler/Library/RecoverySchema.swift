import PaywireStore

public enum RecoverySchema {
    public static let name = "recovery"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
            MessagingTables.setAsideMigration(schema: name, version: 2),
        MessagingTables.relayLeaseMigration(schema: name, version: 3),
    ])
}
