import Foundation
import Logging
import PaywireModels
import Synchronization

/// One JSON object per line on standard error, so logs can be shipped and queried as they are.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    /// Metadata of the work in hand (the trace and span ids when tracing is on).
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let service: String

    private static let output = Mutex<Void>(())

    public init(label: String, service: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.service = service
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: JSONValue] = [
            "ts": .string(PaywireJSON.format(Date())),
            "level": .string(event.level.rawValue),
            "service": .string(service),
            "logger": .string(label),
            "msg": .string(event.message.description),
            "source": .string(event.source),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { own, _ in own } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged { fields[key] = Self.json(value) }
        guard var line = try? PaywireJSON.encoder.encode(JSONValue.object(fields)) else { return }
        line.append(0x0A)
        Self.output.withLock { _ in
            FileHandle.standardError.write(line)
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible): return .string(convertible.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let values): return .object(values.mapValues(json))
        }
    }
}
