import Foundation
import Instrumentation
import PaywireKafka
import ServiceContextModule
import Tracing

/// The W3C trace context (`traceparent`, `tracestate`) of the work in hand, as the headers that
/// carry it across a hop: Kafka message headers, an outbox row (published later, by another
/// task), an HTTP request. With no tracer bootstrapped (no `OTEL_*`) the instrument is a no-op
/// and every function here returns at once with nothing.
public enum TraceHeaders {
    /// The current context's headers, as name → value.
    public static func current(_ context: ServiceContext? = ServiceContext.current) -> [String: String] {
        guard let context else { return [:] }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        return headers
    }

    /// The context named by headers (empty when they name none): the parent of the next span.
    public static func context(from headers: [String: String]) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard !headers.isEmpty else { return context }
        InstrumentationSystem.instrument.extract(headers, into: &context, using: DictionaryExtractor())
        return context
    }

    /// The context a consumed message carries.
    public static func context(from message: KafkaConsumerMessage) -> ServiceContext {
        var headers: [String: String] = [:]
        for header in message.headers where names.contains(header.name) {
            headers[header.name] = String(decoding: header.value, as: UTF8.self)
        }
        return context(from: headers)
    }

    /// A message to produce, carrying `headers` (replacing any trace headers it had).
    public static func attach(_ headers: [String: String], to message: KafkaProducerMessage) -> KafkaProducerMessage {
        guard !headers.isEmpty else { return message }
        var message = message
        message.headers.removeAll { names.contains($0.name) }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { message.headers.append(KafkaHeader(name: name, string: value)) }
        return message
    }

    /// A message to produce, carrying the current context.
    public static func attachCurrent(to message: KafkaProducerMessage) -> KafkaProducerMessage {
        attach(current(), to: message)
    }

    /// Headers as stored in an outbox row (JSON), nil when there are none.
    public static func encoded(_ headers: [String: String]) -> String? {
        guard !headers.isEmpty, let data = try? JSONEncoder().encode(headers) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    public static func decoded(_ text: String?) -> [String: String] {
        guard let text, let headers = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else { return [:] }
        return headers.filter { names.contains($0.key) }
    }

    /// The only headers taken from outside: a message or request cannot set anything else this way.
    static let names: Set<String> = ["traceparent", "tracestate"]

    struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key.lowercased()] = value
        }
    }

    struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? {
            carrier[key.lowercased()]
        }
    }
}
