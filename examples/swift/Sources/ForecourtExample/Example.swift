import ForecourtClient
import Foundation
import JSONRPC

/// Shows a dealer's delayed orders and the timeline of the first, the way a dealer dashboard
/// would. Settings come from the environment:
///
///     FORECOURT_CONNECT=127.0.0.1:7443 FORECOURT_CA=.forecourt/tls/ca.pem FORECOURT_API_KEY=fck_... \
///         swift run ForecourtExample
///
/// Prints one JSON text per line: who it is, each delayed order, the first one's timeline.
@main
struct Example {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let address = environment["FORECOURT_CONNECT"] ?? "127.0.0.1:7443"
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            fatalError("FORECOURT_CONNECT must be host:port")
        }
        guard let apiKey = environment["FORECOURT_API_KEY"] else { fatalError("FORECOURT_API_KEY is not set") }

        // TLS with the service's CA; the certificate names localhost in development.
        let client = try await ForecourtClient.connect(
            host: String(address[..<colon]), port: port, caPath: environment["FORECOURT_CA"],
            serverHostname: environment["FORECOURT_SERVER_NAME"] ?? "localhost")
        let principal = try await client.authenticate(apiKey: apiKey)
        print(JSONWriter.string(["whoami": principal]))

        // Pages of delayed orders, following `next` until it is null.
        var delayed: [JSON] = []
        var after: JSON = .null
        repeat {
            var params: JSONObject = ["delayed": true, "limit": 100]
            if after != .null { params["after"] = after }
            let page = try await client.call("order.list", params: .object(params))
            delayed += page["items"]?.arrayValue ?? []
            after = page["next"] ?? .null
        } while after != .null
        for order in delayed {
            print(JSONWriter.string([
                "order_number": order["order_number"] ?? .null, "stage": order["stage"] ?? .null,
                "on_hold": order["on_hold"] ?? .null, "hold_reason": order["hold_reason"] ?? .null,
                "promised_eta": order["promised_eta"] ?? .null, "eta": order["eta"] ?? .null,
            ]))
        }

        // The first delayed order's timeline; a typed error tells "not found" from the rest.
        if let id = delayed.first?["id"] {
            do {
                let timeline = try await client.call("order.timeline", params: ["id": id])
                print(JSONWriter.string(["timeline": timeline["events"] ?? []]))
            } catch let error as ForecourtClient.Error where error.reason == "not_found" {
                print(JSONWriter.string(["timeline": .null]))
            }
        }
        await client.close()
    }
}
