// swift-tools-version:6.1
// An integrator's program on the ForecourtClient library: copy this directory, point the
// dependency at Forecourt's repository (or a release), and build with `swift build`.
import PackageDescription

let package = Package(
    name: "forecourt-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        // In your project: .package(url: "https://your.git.host/forecourt.git", from: "1.0.0")
        .package(name: "forecourt", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "ForecourtExample",
            dependencies: [.product(name: "ForecourtClient", package: "forecourt")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
