import Hummingbird
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// OpenTelemetry tracing, off unless the standard `OTEL_*` variables ask for it: an OTLP endpoint
/// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
/// `OTEL_TRACES_EXPORTER=otlp`, and not `OTEL_SDK_DISABLED=true`. Spans go out over OTLP/HTTP
/// (`http/protobuf` by default), named by `OTEL_SERVICE_NAME` (default: the Paywire service's
/// name). Off, nothing is bootstrapped: every span is the no-op tracer's and no header is written.
public enum PaywireTracing {
    public static let environmentKeys = [
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ]

    public static func isRequested(_ environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        let exporter = environment["OTEL_TRACES_EXPORTER"]?.lowercased() ?? ""
        if exporter == "none" { return false }
        if exporter == "otlp" { return true }
        return ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].contains { !(environment[$0] ?? "").isEmpty }
    }

    /// Bootstraps the process's tracer when asked, and returns the service that exports its spans
    /// (run it with the application: it flushes what is left at shutdown); nil when tracing is off.
    public static func bootstrap(serviceName: String, environment: [String: String], logger: Logger) throws -> (any Service)? {
        guard isRequested(environment) else { return nil }
        for key in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = environment[key], !["http/protobuf", "http/json"].contains(value.lowercased()) {
                throw ServiceConfiguration.ConfigurationError(key: key, reason: "http/protobuf or http/json (Paywire exports OTLP over HTTP)")
            }
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // The OTEL_* variables override these (OTEL_SERVICE_NAME the name, the endpoint, …).
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// A server span per HTTP request, a child of the request's `traceparent` (a new trace
    /// without one). Added first to every router; a query's `client_secret` is not recorded.
    public static func httpMiddleware() -> RequestTracingMiddleware {
        RequestTracingMiddleware()
    }

    /// Hummingbird's `TracingMiddleware`, except for the probes and the scrape (`/health`,
    /// `/ready`, `/metrics`): a trace every few seconds per replica would bury the ones that matter.
    public struct RequestTracingMiddleware: RouterMiddleware {
        public typealias Context = PaywireRequestContext
        let tracing = TracingMiddleware<PaywireRequestContext>(redactingQueryParameters: ["client_secret"])
        static let untraced: Set<String> = ["/health", "/ready", "/metrics"]

        public func handle(_ request: Request, context: PaywireRequestContext, next: (Request, PaywireRequestContext) async throws -> Response) async throws -> Response {
            if Self.untraced.contains(request.uri.path) { return try await next(request, context) }
            return try await tracing.handle(request, context: context, next: next)
        }
    }

    /// What every log line of traced work carries: `trace_id` and `span_id`.
    public static let metadataProvider = OTel.makeLoggingMetadataProvider()
}
