// swift-tools-version:6.1
import PackageDescription

/// Strict settings for every first-party target (docs/architecture.md, "Conventions").
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let testing: [Target.Dependency] = ["TestSupport"]

/// An area module: its models, validation, SQL, service and JSON-RPC methods. `extra` names
/// only what the area imports beyond the four every area uses.
func area(_ name: String, _ extra: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: ["ForecourtCore", "Postgres", "Storage", "RPC"] + extra,
        swiftSettings: strict
    )
}

/// The message templates of `Delivery`, one text and one HTML file per notification kind,
/// compiled into the binary (`PackageResources`), not loaded from a bundle at run time.
enum DeliveryTemplates {
    static let kinds = ["order_confirmation", "production_scheduled", "vin_assigned", "shipped", "delivered", "delay"]
    static let resources: [Resource] = kinds.flatMap { kind in
        ["txt", "html"].map { Resource.embedInCode("Templates/\(kind).\($0).mustache") }
    } + [.embedInCode("Templates/layout.html.mustache"), .embedInCode("Templates/layout.txt.mustache")]
}

let package = Package(
    name: "forecourt",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "forecourt", targets: ["forecourt"]),
        .executable(name: "forecourt-bench", targets: ["ForecourtBench"]),
        .library(name: "ForecourtClient", targets: ["ForecourtClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // C stays in its box: only Postgres imports CLibPQ.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ", "ForecourtCore", logging, metrics, crypto,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ] + nio,
            swiftSettings: strict
        ),
        // libcrypto (OpenSSL, which libpq already loads) for AES-GCM with reusable key
        // schedules; only FieldCrypto imports it. See docs/security.md.
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        .target(name: "FieldCrypto", dependencies: ["COpenSSL", crypto], swiftSettings: strict),
        // migrations/*.sql carried in the binary: a build tool plugin turns them into Swift source.
        .executableTarget(name: "EmbedMigrationsTool", swiftSettings: strict),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["EmbedMigrationsTool"]),
        .target(name: "EmbeddedMigrations", swiftSettings: strict, plugins: ["EmbedMigrations"]),
        .target(name: "ForecourtCore", swiftSettings: strict),
        // JSON and the JSON-RPC 2.0 message types, shared by the server and the client library.
        .target(name: "JSONRPC", dependencies: ["ForecourtCore"], swiftSettings: strict),
        // The bounded line decoder, for the server's and the client's pipelines.
        .target(name: "LineFraming", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        .target(name: "RPC", dependencies: ["JSONRPC", "ForecourtCore", logging, metrics], swiftSettings: strict),
        .target(
            name: "Storage",
            dependencies: ["ForecourtCore", "Postgres", "FieldCrypto", logging, crypto],
            swiftSettings: strict
        ),
        area("Audit"),
        area("Identity", ["Audit", crypto, logging]),
        area("Dealers", ["Audit"]),
        area("Notifications", ["Audit", "FieldCrypto"]),
        area("Customers", ["Audit", "FieldCrypto"]),
        area("Orders", ["Audit", "FieldCrypto", "Notifications"]),
        // Events reads orders and listens through Postgres; it writes nothing, so no Storage.
        .target(name: "Events", dependencies: ["ForecourtCore", "Postgres", "RPC", "Orders", logging], swiftSettings: strict),
        // Sending the outbox: the dispatcher, SMTP, MIME, templates, webhook POSTs
        // (docs/architecture.md, "Delivery"). Templates are files embedded in the binary, so an
        // installed `forecourt` needs nothing beside it.
        .target(
            name: "Delivery",
            dependencies: [
                "ForecourtCore", "Postgres", "Storage", "FieldCrypto", "JSONRPC", "Customers", "Notifications", logging, metrics,
                crypto, .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ] + nio,
            resources: DeliveryTemplates.resources,
            swiftSettings: strict
        ),
        .target(
            name: "Server",
            dependencies: [
                "RPC", "LineFraming", logging, metrics, crypto,
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ] + nio,
            swiftSettings: strict
        ),
        .target(
            name: "ForecourtClient",
            dependencies: [
                "JSONRPC", "LineFraming",
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOTLS", package: "swift-nio"),
            ] + nio,
            swiftSettings: strict
        ),
        .target(
            name: "ForecourtApp",
            dependencies: [
                "Postgres", "FieldCrypto", "ForecourtCore", "RPC", "Storage", "Server", "ForecourtClient", "EmbeddedMigrations",
                "Audit", "Identity", "Dealers", "Customers", "Orders", "Events", "Notifications", "Delivery",
                logging, metrics, crypto,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ] + nio,
            swiftSettings: strict
        ),
        .executableTarget(name: "forecourt", dependencies: ["ForecourtApp"], swiftSettings: strict),
        // examples/swift is a package of its own for integrators to copy; its program is also
        // built here, on the same ForecourtClient, so that the tests run it against a real service.
        .executableTarget(
            name: "ForecourtExample", dependencies: ["ForecourtClient"], path: "examples/swift/Sources/ForecourtExample",
            swiftSettings: strict),
        .executableTarget(
            name: "ForecourtBench",
            dependencies: [
                "ForecourtApp", "ForecourtClient", "Postgres", "FieldCrypto",
                "Customers", "Dealers", "ForecourtCore", "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),

        // Tests. TestSupport holds the scoped helpers over the real PostgreSQL that scripts/test starts.
        .target(
            name: "TestSupport",
            dependencies: [
                "Postgres", "Storage", "Identity", "Dealers", "Customers", "FieldCrypto", "ForecourtApp", "ForecourtClient",
                "ForecourtCore", "RPC", logging, crypto, .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"] + testing, swiftSettings: strict),
        .testTarget(name: "FieldCryptoTests", dependencies: ["FieldCrypto", "ForecourtCore"], swiftSettings: strict),
        .testTarget(name: "ForecourtCoreTests", dependencies: ["ForecourtCore"], swiftSettings: strict),
        .testTarget(
            name: "RPCTests",
            dependencies: ["RPC", "ForecourtCore", logging],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "RPC", "ForecourtCore", "ForecourtClient", "ForecourtApp", "TestSupport", logging, crypto,
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ForecourtApp", "ForecourtClient", "Postgres", "Storage", "FieldCrypto", "ForecourtCore", "RPC", "EmbeddedMigrations",
                "Identity", "Dealers", "Customers", "Orders", "Events", "Notifications", "Audit", logging,
                .product(name: "InMemoryLogging", package: "swift-log"),
            ] + testing,
            swiftSettings: strict
        ),
        .testTarget(
            name: "DeliveryTests",
            dependencies: [
                "Delivery", "ForecourtApp", "Postgres", "Storage", "FieldCrypto", "ForecourtCore", "RPC", "Customers",
                "Notifications", logging, crypto, .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ] + nio + testing,
            // The real SMTP relay and webhook receiver the tests start (Python: aiosmtpd, http.server).
            exclude: ["Peers"],
            swiftSettings: strict
        ),
    ]
)

// The libFuzzer target (scripts/fuzz builds it in a build directory of its own): declared only
// then, so that the normal build and the tests never compile it. The first-party libraries are
// compiled with libFuzzer's coverage instrumentation (-sanitize=fuzzer), the dependencies and
// the build tool (EmbedMigrationsTool, which must run) without it.
if Context.environment["FORECOURT_FUZZ"] == "1" {
    let fuzzer: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer"])]
    for target in package.targets where target.type == .regular {
        target.swiftSettings = (target.swiftSettings ?? []) + fuzzer
    }
    package.targets.append(
        .executableTarget(
            name: "ForecourtFuzz",
            dependencies: [
                "Audit", "Customers", "Dealers", "Events", "FieldCrypto", "Identity", "JSONRPC", "LineFraming", "Notifications",
                "Orders", "Postgres", "RPC", "Storage", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/Fuzz/ForecourtFuzz",
            swiftSettings: strict + fuzzer + [.unsafeFlags(["-parse-as-library"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
        ))
    package.products.append(.executable(name: "forecourt-fuzz", targets: ["ForecourtFuzz"]))
}
