import ArgumentParser
import ForecourtClient
import Foundation
import RPC

/// `forecourt call METHOD [JSON]`: one request over TLS, the response printed on one line.
///
/// Authenticates first when an API key is given (`--key` or `FORECOURT_API_KEY`). Prints the
/// response's `result`, or its `error` object, as compact JSON; exits with 1 on an error response.
public struct CallCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call one JSON-RPC method and print the response.",
        discussion: """
            Prints the result (or the error object) as one line of JSON. Exit status 1 on an error \
            response, 2 when the call could not be made.
            Example: forecourt call order.get '{"order_number":"DLR01-000123"}' --key $KEY
            """
    )

    @Argument(help: "The method, e.g. system.ping.")
    public var method: String

    @Argument(help: "The params, a JSON object (default {}).")
    public var params: String?

    @Option(help: "API key (default: $FORECOURT_API_KEY); when absent, the call is made unauthenticated.")
    public var key: String?

    @Option(help: "host:port of the server (default: $FORECOURT_CONNECT or 127.0.0.1:7443).")
    public var connect: String?

    @Option(help: "PEM file of the CA to trust (default: $FORECOURT_CA, else the system's roots).")
    public var ca: String?

    @Option(help: "The name the server's certificate must carry (default: the host).")
    public var serverName: String?

    public init() {}

    public func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let apiKey = key ?? environment["FORECOURT_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let address = connect ?? environment["FORECOURT_CONNECT"] ?? "127.0.0.1:7443"
        let caPath = ca ?? environment["FORECOURT_CA"].flatMap { $0.isEmpty ? nil : $0 }
        guard let (host, port) = Self.parseHostPort(address) else {
            throw ValidationError("--connect must be host:port (or [ipv6]:port), not \(address)")
        }
        let paramsValue: JSON
        if let params {
            do {
                paramsValue = try JSONParser().parse(params)
            } catch {
                throw ValidationError("the params are not valid JSON: \(error.description)")
            }
        } else {
            paramsValue = .object(JSONObject())
        }

        let client: ForecourtClient
        do {
            client = try await ForecourtClient.connect(host: host, port: port, caPath: caPath, serverHostname: serverName)
        } catch {
            printError("forecourt call: cannot connect to \(address): \(error)")
            throw ExitCode(2)
        }
        let response: JSON
        do {
            if let apiKey {
                let authentication = try await client.request("session.authenticate", params: ["api_key": .string(apiKey)])
                if let error = authentication["error"] {
                    print(JSONWriter.string(error))
                    await client.close()
                    throw ExitCode(1)
                }
            }
            response = try await client.request(method, params: paramsValue)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            await client.close()
            printError("forecourt call: the call failed: \(error)")
            throw ExitCode(2)
        }
        await client.close()
        if let error = response["error"] {
            print(JSONWriter.string(error))
            throw ExitCode(1)
        }
        print(JSONWriter.string(response["result"] ?? .null))
    }

    /// `host:port`, `[v6]:port`.
    static func parseHostPort(_ text: String) -> (String, Int)? {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port), !host.isEmpty else {
                return nil
            }
            return (host, port)
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty, !host.contains(":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        return (host, port)
    }

}
