// swift-tools-version:6.1
import PackageDescription

// The folder layout mirrors the architecture: Shared/ is the library every service links,
// Services/<Service>/ holds each service as a library (logic, testable) plus a thin executable.
let swiftSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "Paywire",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gateway", targets: ["GatewayMain"]),
        .executable(name: "payment-core", targets: ["PaymentCoreMain"]),
        .executable(name: "recovery-scheduler", targets: ["RecoverySchedulerMain"]),
        .executable(name: "webhook-dispatcher", targets: ["WebhookDispatcherMain"]),
        .executable(name: "paywire", targets: ["PaywireCLI"]),
        .executable(name: "paywire-dev-broker", targets: ["DevBroker"]),
        .executable(name: "paywire-fake-stripe", targets: ["FakeStripe"]),
        .executable(name: "paywire-fake-adyen", targets: ["FakeAdyen"]),
        .executable(name: "kafka-throughput", targets: ["KafkaThroughput"]),
        .executable(name: "payments-throughput", targets: ["PaymentsThroughput"]),
        .executable(name: "webhook-throughput", targets: ["WebhookThroughput"]),
        .executable(name: "recovery-throughput", targets: ["RecoveryThroughput"]),
        .executable(name: "stack-cost", targets: ["StackCost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter would build gRPC and HTTP/2 for nothing.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // MARK: Shared
        .systemLibrary(
            name: "CRdKafka",
            path: "Shared/CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "PaywireKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Shared/Kafka",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PaywireModels",
            dependencies: [],
            path: "Shared/Models",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PaywireStore",
            dependencies: [
                "PaywireKafka",
                "PaywireModels",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Shared/Store",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PaywireRuntime",
            dependencies: [
                "PaywireKafka",
                "PaywireStore",
                "PaywireModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            path: "Shared/Runtime",
            swiftSettings: swiftSettings
        ),

        // MARK: Services
        .target(
            name: "Gateway",
            dependencies: [
                "PaywireRuntime", "PaywireKafka", "PaywireStore", "PaywireModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Services/Gateway/Library",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "GatewayMain",
            dependencies: ["Gateway", "PaywireRuntime"],
            path: "Services/Gateway/Executable",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PaymentCore",
            dependencies: [
                "PaywireRuntime", "PaywireKafka", "PaywireStore", "PaywireModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Services/PaymentCore/Library",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PaymentCoreMain",
            dependencies: ["PaymentCore", "PaywireRuntime"],
            path: "Services/PaymentCore/Executable",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RecoveryScheduler",
            dependencies: ["PaywireRuntime", "PaywireKafka", "PaywireStore", "PaywireModels"],
            path: "Services/RecoveryScheduler/Library",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RecoverySchedulerMain",
            dependencies: ["RecoveryScheduler", "PaywireRuntime"],
            path: "Services/RecoveryScheduler/Executable",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WebhookDispatcher",
            dependencies: [
                "PaywireRuntime", "PaywireKafka", "PaywireStore", "PaywireModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Services/WebhookDispatcher/Library",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "WebhookDispatcherMain",
            dependencies: ["WebhookDispatcher", "PaywireRuntime"],
            path: "Services/WebhookDispatcher/Executable",
            swiftSettings: swiftSettings
        ),

        // MARK: Operator command line
        .executableTarget(
            name: "PaywireCLI",
            dependencies: [
                "PaywireKafka", "PaywireModels", "PaywireRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tools/PaywireCLI",
            swiftSettings: swiftSettings
        ),

        // MARK: Development tools
        .executableTarget(
            name: "DevBroker",
            dependencies: [
                "PaywireKafka",
                "PaywireRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tools/DevBroker",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FakeStripe",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/FakeStripe",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FakeAdyen",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/FakeAdyen",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PaymentsThroughput",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/PaymentsThroughput",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Support",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RecoveryThroughput",
            dependencies: [
                "PaywireKafka", "PaywireModels", "PaywireRuntime", "BenchmarkSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/RecoveryThroughput",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "WebhookThroughput",
            dependencies: [
                "PaywireKafka", "PaywireModels", "BenchmarkSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/WebhookThroughput",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "StackCost",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/StackCost",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "KafkaThroughput",
            dependencies: [
                "PaywireKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/KafkaThroughput",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .target(
            name: "PaywireTestSupport",
            dependencies: [
                "PaywireKafka", "PaywireStore", "PaywireRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UnitTests",
            dependencies: [
                "PaywireKafka", "PaywireModels", "PaywireStore", "PaywireRuntime", "PaywireTestSupport",
                "Gateway", "PaymentCore", "RecoveryScheduler", "WebhookDispatcher",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/UnitTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "PaywireKafka", "PaywireModels", "PaywireStore", "PaywireRuntime", "PaywireTestSupport",
                "Gateway", "PaymentCore", "RecoveryScheduler", "WebhookDispatcher",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/IntegrationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "PaywireTestSupport", "PaywireModels", "PaywireKafka", "PaywireStore", "PaywireRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
