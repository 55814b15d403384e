import Foundation

/// What a script printed (standard output and error together) and how it ended.
public struct ScriptRun: Sendable {
    public let status: Int32
    public let output: String

    /// The JSON object on the last line that starts with `prefix` (scripts print one for tools).
    public func jsonLine(_ prefix: String) -> [String: Any]? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else { return nil }
        let data = Data(line.dropFirst(prefix.count).utf8)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

/// Runs `scripts/<name>` of this repository with `arguments` and waits for it, on a thread of
/// its own (`offloaded`): a script runs for seconds, and a cooperative thread blocked that long
/// stalls every other test of the process.
public func runScript(_ name: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ScriptRun {
    try await offloaded { try runScriptBlocking(name, arguments, environment: environment) }
}

private func runScriptBlocking(_ name: String, _ arguments: [String], environment: [String: String]) throws -> ScriptRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: TestEnvironment.repositoryDirectory + "/scripts/" + name)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ScriptRun(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
}
