import Audit
import Customers
import Dealers
import Events
import FieldCrypto
import Foundation
import Identity
import JSONRPC
import LineFraming
import NIOCore
import NIOEmbedded
import Notifications
import Orders
import Postgres
import RPC
import Storage

/// The libFuzzer entry point (`scripts/fuzz`, docs/security.md, "Hostile input"): one input is
/// the bytes a client sends on a connection. They go through what the server does with them
/// before a method runs, and nothing may crash, trap or hang:
///
/// 1. `LineFrameDecoder` (in two reads split mid-input, then end of stream), with a small limit
///    so that over-long lines are reached too;
/// 2. `JSONParser` on every line, and for what parses, `JSONWriter` and the parser again, which
///    must give back the same value;
/// 3. the JSON-RPC envelope rules (`RPCRequest.validate`, batches included);
/// 4. `Params` decoding (`RPCMethod.checkParams`) of the named method, or of every registered
///    method when the name is none of theirs, so that each method's decoding is fuzzed.
///
/// No database is involved: the methods are wired to a pool that is never used.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    for line in Fuzz.frame(bytes) { Fuzz.handle(line: line) }
    return 0
}

/// libFuzzer's driver, called from `main`: SwiftPM links an executable's entry point itself, so
/// libFuzzer's own `main` is not the one that runs.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum ForecourtFuzz {
    static func main() {
        _ = Fuzz.methods  // fails at once if the method list drifted
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}

enum Fuzz {
    static let maximumLineLength = 2048
    static let parser = JSONParser(maximumDepth: 64)
    /// Every method `forecourt serve` registers, registered as `ServiceWiring` does (the fuzz
    /// target does not link ForecourtApp, whose TLS, HTTP and certificate packages would double
    /// its build time); checked at start against the methods docs/openrpc.json describes, which
    /// OpenRPCTests holds to `ServiceWiring`'s registry, so neither list can drift from the other.
    static let methods: [RPCMethod] = {
        let pool = PostgresPool(
            configuration: AppDatabase.poolConfiguration(
                connectionString: "host=/nonexistent port=1 user=fuzz dbname=fuzz connect_timeout=1", maximumConnections: 1))
        let database = AppDatabase(pool: pool)
        let cipher = FieldCipher(keyring: .generate())
        let cursors = CursorCodec { cipher.mac($0, purpose: "cursor") }
        let identity = IdentityService(database: database, cursors: cursors)
        let dealers = DealerService(database: database, cursors: cursors)
        let orders = OrderService(database: database, cursors: cursors, cipher: cipher)
        let notifications = NotificationService(database: database, cursors: cursors, cipher: cipher, allowsInsecureWebhooks: false)
        let events = EventHub(
            orders: orders, authority: identity, revalidationInterval: .seconds(2),
            checkDealer: { caller, dealer in _ = try await dealers.get(caller: caller, id: dealer) })
        var registry = MethodRegistry()
        registry.register(SystemMethods.all())
        registry.register(SessionMethods.all(identity))
        registry.register(KeyMethods.all(identity))
        registry.register(DealerMethods.all(dealers))
        registry.register(CustomerMethods.all(CustomerService(database: database, cipher: cipher, cursors: cursors)))
        registry.register(OrderMethods.all(orders))
        registry.register(TrackingMethods.all(TrackingService(database: database, cipher: cipher)))
        registry.register(NotificationMethods.all(notifications))
        registry.register(WebhookMethods.all(notifications))
        registry.register(AuditMethods.all(AuditService(database: database, cursors: cursors)))
        registry.register(EventMethods.all(events))
        registry.register(DiscoveryMethods.discover(registry, version: "fuzz"))
        let described = describedMethods()
        if Set(registry.names) != described {
            fatalError("""
                the fuzz target's methods differ from docs/openrpc.json's: \
                only here \(Set(registry.names).subtracting(described).sorted()), \
                only there \(described.subtracting(registry.names).sorted()); register them as ServiceWiring does
                """)
        }
        return registry.all
    }()

    /// The method names of docs/openrpc.json (the repository's, found from the working directory
    /// or FORECOURT_OPENRPC).
    static func describedMethods() -> Set<String> {
        let path = ProcessInfo.processInfo.environment["FORECOURT_OPENRPC"] ?? "docs/openrpc.json"
        guard let data = FileManager.default.contents(atPath: path), case .object(let document) = try? parser.parse(Array(data)),
              case .array(let methods)? = document["methods"]
        else { fatalError("cannot read the method names of \(path) (run from the repository's root)") }
        return Set(methods.compactMap { $0["name"]?.stringValue })
    }
    static let byName = Dictionary(uniqueKeysWithValues: methods.map { ($0.name, $0) })

    /// The lines the server's decoder hands on for these bytes, in two reads and then end of stream.
    static func frame(_ bytes: [UInt8]) -> [[UInt8]] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(LineFrameDecoder(maximumLength: maximumLineLength)))
        } catch {
            fatalError("cannot add the decoder: \(error)")
        }
        var lines: [[UInt8]] = []
        func drain() {
            while let line = try? channel.readInbound(as: ByteBuffer.self) {
                let line = Array(line.readableBytesView)
                precondition(line.count <= maximumLineLength, "a line longer than the limit was handed on")
                precondition(!line.contains(UInt8(ascii: "\n")), "a line with a newline in it was handed on")
                lines.append(line)
            }
        }
        let middle = bytes.count / 2
        for part in [bytes[..<middle], bytes[middle...]] {
            do {
                try channel.writeInbound(ByteBuffer(bytes: part))
            } catch is LineFrameDecoder.LineTooLong {
                drain()
                return lines  // the connection is answered once and closed
            } catch {
                fatalError("the decoder failed with \(error)")
            }
            drain()
        }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        drain()
        return lines
    }

    static func handle(line: [UInt8]) {
        let value: JSON
        do {
            value = try parser.parse(line)
        } catch {
            return
        }
        // What the writer makes of a parsed value parses back to that value.
        let written = JSONWriter.write(value)
        guard let again = try? parser.parse(written) else {
            fatalError("the writer's text does not parse: \(String(decoding: written, as: UTF8.self))")
        }
        precondition(again == value, "written and parsed again, a value changed: \(String(decoding: written, as: UTF8.self))")
        if case .array(let entries) = value {
            for entry in entries.prefix(100) { handle(request: entry) }
        } else {
            handle(request: value)
        }
    }

    static func handle(request value: JSON) {
        guard case .success(let request) = RPCRequest.validate(value), case .object = request.params else { return }
        if let method = byName[request.method] {
            check(method, request.params)
        } else {
            for method in methods { check(method, request.params) }
        }
    }

    static func check(_ method: RPCMethod, _ params: JSON) {
        // Any error is an answer (-32602 and its like); only a crash is a finding.
        do {
            try method.checkParams(params)
        } catch {}
    }
}
