import Foundation
import RPC
import Testing

/// The error of a call that must fail, or a recorded issue.
public func expectFailure(
    _ result: Result<JSON, CallError>, code: Int, field: String? = nil, _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    switch result {
    case .success(let value):
        Issue.record("expected error \(code), got \(value)", sourceLocation: sourceLocation)
    case .failure(let error):
        #expect(error.code == code, comment, sourceLocation: sourceLocation)
        if let field { #expect(error.field == field, comment, sourceLocation: sourceLocation) }
    }
}

/// What `eventually` throws when its condition never held.
public struct TimedOut: Error {
    public init() {}
}

/// Waits for `condition`, polling; throws `TimedOut` after `limit` (a safety net against
/// hangs, not a performance assertion: generous, since the suite runs its tests in parallel on
/// machines with two cores).
public func eventually(_ limit: Duration = .seconds(60), _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// `pg_dump --data-only` of a database (plain SQL), as an operator's backup would hold it,
/// run off the cooperative threads (`offloaded`).
/// Throws when `pg_dump` is missing or fails: a check that searches the dump must not pass
/// on an empty one.
public func pgDump(_ connectionString: String) async throws -> String {
    try await offloaded { try pgDumpBlocking(connectionString) }
}

private func pgDumpBlocking(_ connectionString: String) throws -> String {
    let binary = (ProcessInfo.processInfo.environment["FC_PGBIN"] ?? "/usr/lib/postgresql/15/bin") + "/pg_dump"
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        throw TestSetupError("\(binary) is missing: install postgresql-15 (scripts/test does)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["--data-only", "-d", connectionString]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestSetupError("pg_dump exited with status \(process.terminationStatus)")
    }
    guard !data.isEmpty else { throw TestSetupError("pg_dump wrote nothing") }
    return String(decoding: data, as: UTF8.self)
}

/// The error of a call that must fail. A success is a recorded issue and a thrown error, so
/// the checks that follow can never be skipped by a call that unexpectedly worked.
public func requireFailure(
    _ result: Result<JSON, CallError>, sourceLocation: SourceLocation = #_sourceLocation
) throws -> CallError {
    switch result {
    case .success(let value):
        Issue.record("expected an error, got \(value)", sourceLocation: sourceLocation)
        throw TestSetupError("a call that must fail succeeded")
    case .failure(let error):
        return error
    }
}

/// Runs blocking work (a process, libpq) on a thread of its own: never on a cooperative thread
/// (the test process has as many of those as cores, shared by every suite), nor on NIO's shared
/// thread pool, which the code under test uses.
public func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Waits for a process to end, off the cooperative threads.
public func exited(_ process: Process) async throws {
    try await offloaded { process.waitUntilExit() }
}
