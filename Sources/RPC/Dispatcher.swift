import ForecourtCore
import Foundation
import Logging
import Metrics
import Synchronization

/// Checks and refreshes sessions on behalf of the dispatcher (implemented by `Identity`).
public protocol SessionAuthority: Sendable {
    /// Re-checks the session's credential (a revoked key must stop working within seconds).
    /// Returns false when the credential is no longer valid.
    func revalidate(_ session: Session) async throws -> Bool
    /// Authenticates a session that presented a client certificate, if it maps to a principal.
    func authenticate(certificateFingerprint: [UInt8], session: Session) async throws
}

/// Turns one line into zero or one response line: envelope rules of JSON-RPC 2.0, batches,
/// authentication, the role check of each method, error mapping, logs and metrics.
public final class Dispatcher: Sendable {
    public struct Limits: Sendable {
        /// The most entries a batch may have (more: -32600 for the whole batch).
        public var maximumBatchSize = 100
        /// The deepest nesting a JSON text may have.
        public var maximumDepth = 64
        /// How often an open session's credential is re-checked (revocation takes effect within it).
        public var revalidationInterval: Duration = .seconds(2)

        public init() {}
    }

    private let registry: MethodRegistry
    private let authority: (any SessionAuthority)?
    private let limits: Limits
    private let logger: Logger
    private let parser: JSONParser
    private let metrics: RequestMetrics

    /// - Parameter metrics: where `forecourt_rpc_requests_total` and
    ///   `forecourt_rpc_request_duration_seconds` go (docs/protocol.md, "Metrics"); the process's
    ///   bootstrapped factory unless a test passes its own.
    public init(
        registry: MethodRegistry, authority: (any SessionAuthority)?, limits: Limits = Limits(), logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.registry = registry
        self.authority = authority
        self.limits = limits
        self.logger = logger
        self.parser = JSONParser(maximumDepth: limits.maximumDepth)
        self.metrics = RequestMetrics(factory: metrics)
    }

    /// Handles one line (without its line terminator).
    /// - Returns: the response line (without terminator), or nil when nothing is to be answered.
    public func handle<Line: Collection & Sendable>(line: Line, session: Session) async -> [UInt8]? where Line.Element == UInt8 {
        let value: JSON
        do {
            value = try parser.parse(line)
        } catch {
            return JSONWriter.write(RPCResponse.failure(id: .null, error: .parseError(error.description)))
        }
        return await handle(value, session: session).map(JSONWriter.write)
    }

    /// Handles one parsed JSON text: a request or a batch.
    public func handle(_ value: JSON, session: Session) async -> JSON? {
        guard case .array(let entries) = value else {
            return await handleSingle(value, session: session)
        }
        guard !entries.isEmpty else {
            return RPCResponse.failure(id: .null, error: .invalidRequest("empty batch"))
        }
        guard entries.count <= limits.maximumBatchSize else {
            return RPCResponse.failure(
                id: .null, error: .invalidRequest("a batch may have at most \(limits.maximumBatchSize) entries"))
        }
        // Entries run in order, so that a batch behaves like the same requests sent one by one.
        var responses: [JSON] = []
        for entry in entries {
            if let response = await handleSingle(entry, session: session) { responses.append(response) }
        }
        return responses.isEmpty ? nil : .array(responses)
    }

    private func handleSingle(_ value: JSON, session: Session) async -> JSON? {
        switch RPCRequest.validate(value) {
        case .failure(let failure):
            count(method: "invalid", code: -32600)
            return RPCResponse.failure(id: failure.id, error: failure.error)
        case .success(let request):
            let started = ContinuousClock.now
            let outcome = await run(request, session: session)
            let code: Int
            let response: JSON?
            switch outcome {
            case .success(let result):
                code = 0
                response = request.id.map { RPCResponse.success(id: $0, result: result) }
            case .failure(let error):
                code = error.code
                response = request.id.map { RPCResponse.failure(id: $0, error: error) }
            }
            let elapsed = started.duration(to: .now)
            let label = registry[request.method] == nil ? "unknown" : request.method
            count(method: label, code: code)
            metrics.duration(method: label).recordNanoseconds(elapsed.nanoseconds)
            if logger.logLevel <= .debug {
                logger.debug(
                    "rpc request",
                    metadata: [
                        "rpc.method": .string(label),
                        "rpc.code": .stringConvertible(code),
                        "rpc.duration_ms": .string(String(format: "%.3f", Double(elapsed.nanoseconds) / 1e6)),
                        "principal.id": .string(session.principal?.id.uuidString.lowercased() ?? "-"),
                        "connection.id": .string(session.id.uuidString.lowercased()),
                    ])
            }
            return response
        }
    }

    private func count(method: String, code: Int) {
        metrics.requests(method: method, code: code).increment()
    }

    private func run(_ request: RPCRequest, session: Session) async -> Result<JSON, RPCError> {
        do {
            let method = try await authorize(request, session: session)
            let context = MethodContext(session: session, principal: session.principal, logger: logger)
            return .success(try await method.invoke(context, request.params))
        } catch let error as DomainError {
            return .failure(RPCError(error))
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            // Our error types have generic descriptions; log the type too, for the operator. The
            // correlation id is made only here: a UUID per call costs a read of the kernel's
            // random source (docs/performance.md).
            let correlationID = UUID().uuidString.lowercased()
            logger.error(
                "internal error",
                metadata: [
                    "rpc.method": .string(registry[request.method] == nil ? "unknown" : request.method),
                    "error.type": .string(String(describing: type(of: error))),
                    "error": .string(String(describing: error)),
                    "correlation.id": .string(correlationID),
                    "connection.id": .string(session.id.uuidString.lowercased()),
                ])
            return .failure(.internal(correlationID: correlationID))
        }
    }

    /// Authentication, method lookup and the role check, before the method runs.
    private func authorize(_ request: RPCRequest, session: Session) async throws -> RPCMethod {
        let method = registry[request.method]
        if case .anyone? = method?.access {
            try checkParamsShape(request)
            return method!
        }
        if !session.isAuthenticated, let fingerprint = session.clientCertificateFingerprint, let authority {
            try await authority.authenticate(certificateFingerprint: fingerprint, session: session)
        }
        guard session.isAuthenticated else {
            // Before authentication, unknown and known methods alike are -32001: nothing is revealed.
            throw DomainError.unauthenticated
        }
        if session.needsRevalidation(every: limits.revalidationInterval), let authority {
            if try await authority.revalidate(session) {
                session.markValidated()
            } else {
                session.deauthenticate()
                throw DomainError(.unauthenticated, "the session's API key was revoked")
            }
        }
        guard let method else { throw RPCError.methodNotFound }
        guard let principal = session.principal, method.admits(principal.role) else {
            throw DomainError.forbidden("the \(session.principal?.role.rawValue ?? "") role may not call \(method.name)")
        }
        try checkParamsShape(request)
        return method
    }

    private func checkParamsShape(_ request: RPCRequest) throws {
        if case .array = request.params {
            throw DomainError(.invalidParams, "params must be an object: methods take named parameters", field: "")
        }
    }
}

/// `forecourt_rpc_requests_total` and `forecourt_rpc_request_duration_seconds` per method (and
/// code), each made once: a factory's `make` takes its registry's lock and builds and checks the
/// names every time, which per call was measurable (docs/performance.md). Methods and codes
/// are a bounded set (registered names, "unknown", "invalid"; the error codes).
private final class RequestMetrics: Sendable {
    private struct Key: Hashable {
        let method: String
        let code: Int
    }

    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func requests(method: String, code: Int) -> Counter {
        let key = Key(method: method, code: code)
        if let counter = counters.withLock({ $0[key] }) { return counter }
        let counter = Counter(
            label: "forecourt_rpc_requests_total", dimensions: [("method", method), ("code", String(code))], factory: factory)
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            counters[key] = counter
            return counter
        }
    }

    func duration(method: String) -> Timer {
        if let timer = timers.withLock({ $0[method] }) { return timer }
        let timer = Timer(label: "forecourt_rpc_request_duration_seconds", dimensions: [("method", method)], factory: factory)
        return timers.withLock { timers in
            if let existing = timers[method] { return existing }
            timers[method] = timer
            return timer
        }
    }
}
