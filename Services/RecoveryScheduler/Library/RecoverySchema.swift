import PaywireRuntime
import PaywireStore

public enum RecoverySchema {
    public static let name = "recovery"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
            MessagingTables.setAsideMigration(schema: name, version: 2),
        MessagingTables.relayLeaseMigration(schema: name, version: 3),
        // The scheduler's own copy of the merchants' configurations (revenue-recovery settings).
        ConfigurationCopy.migration(schema: name, version: 4),
    ])
}
