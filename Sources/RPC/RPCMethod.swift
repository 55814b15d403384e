import ForecourtCore
import Logging

/// What a method needs to know about its call.
public struct MethodContext: Sendable {
    public let session: Session
    /// The authenticated principal; nil only for methods open to unauthenticated sessions.
    public let principal: Principal?
    public let logger: Logger

    public init(session: Session, principal: Principal?, logger: Logger) {
        self.session = session
        self.principal = principal
        self.logger = logger
    }

    /// The principal of a method that requires authentication (the dispatcher guarantees one).
    public var caller: Principal {
        get throws {
            guard let principal else { throw DomainError.unauthenticated }
            return principal
        }
    }
}

/// One JSON-RPC method: its name, who may call it, how its parameters are read and what it does.
///
/// Roles are declared here and checked by the dispatcher before anything runs (docs/protocol.md,
/// "Roles"); finer checks (a dealer's own orders) are the service's.
public struct RPCMethod: Sendable {
    public enum Access: Sendable {
        /// Allowed before authentication (`system.ping`, `session.authenticate`).
        case anyone
        case roles(Set<Role>)
    }

    public let name: String
    public let access: Access
    /// Whether the method changes state (for audit and logging).
    public let isMutating: Bool
    /// Its parameters, result and errors for `rpc.discover`. Every registered method must have
    /// one (a test fails otherwise); nil only so that a method can be declared before it is
    /// described.
    public let schema: MethodSchema?
    /// Reads parameters exactly as a call does (`decode`, then unknown members refused) without
    /// running the method: lets the tests hold each `schema` to what `Params` accepts.
    public let checkParams: @Sendable (JSON) throws -> Void
    let invoke: @Sendable (MethodContext, JSON) async throws -> JSON

    /// A method whose parameters are decoded by `decode` (every member must be read; unknown
    /// ones are refused) and then handled by `run`.
    public init<Input: Sendable>(
        _ name: String,
        access: Access,
        mutating isMutating: Bool = false,
        schema: MethodSchema? = nil,
        decode: @escaping @Sendable (Params) throws -> Input,
        run: @escaping @Sendable (MethodContext, Input) async throws -> any JSONRepresentable
    ) {
        self.name = name
        self.access = access
        self.isMutating = isMutating
        self.schema = schema
        self.checkParams = { params in
            let reader = try Params(request: params)
            _ = try decode(reader)
            try reader.finish()
        }
        self.invoke = { context, params in
            let reader = try Params(request: params)
            let input = try decode(reader)
            try reader.finish()
            return try await run(context, input).json
        }
    }

    /// A method for principals of the given roles.
    public init<Input: Sendable>(
        _ name: String,
        roles: Set<Role>,
        mutating isMutating: Bool = false,
        schema: MethodSchema? = nil,
        decode: @escaping @Sendable (Params) throws -> Input,
        run: @escaping @Sendable (MethodContext, Input) async throws -> any JSONRepresentable
    ) {
        self.init(name, access: .roles(roles), mutating: isMutating, schema: schema, decode: decode, run: run)
    }

    /// Whether a principal of this role may call the method.
    public func admits(_ role: Role) -> Bool {
        switch access {
        case .anyone: true
        case .roles(let roles): roles.contains(role)
        }
    }
}

/// The table of methods the dispatcher serves. Areas contribute their methods at wiring time.
public struct MethodRegistry: Sendable {
    private(set) var methods: [String: RPCMethod] = [:]

    public init(_ methods: [RPCMethod] = []) {
        for method in methods { register(method) }
    }

    public mutating func register(_ method: RPCMethod) {
        precondition(methods[method.name] == nil, "method \(method.name) registered twice")
        methods[method.name] = method
    }

    public mutating func register(_ list: [RPCMethod]) {
        for method in list { register(method) }
    }

    public subscript(name: String) -> RPCMethod? { methods[name] }

    public var names: [String] { methods.keys.sorted() }

    /// Every method, by name.
    public var all: [RPCMethod] { names.compactMap { methods[$0] } }
}
