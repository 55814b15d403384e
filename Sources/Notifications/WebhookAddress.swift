import ForecourtCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address, v4 or v6, as its bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses a literal: `192.0.2.1`, `2001:db8::1` (no brackets, no zone).
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    public var isV4: Bool { bytes.count == 4 }

    public var description: String {
        if isV4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// Whether the address is on the public internet: not loopback, private, shared (CGNAT),
    /// link-local (which holds the cloud metadata service, 169.254.169.254), multicast,
    /// reserved, documentation or unspecified; IPv6 forms that embed an IPv4 address
    /// (mapped, NAT64, 6to4) are judged by that address (docs/security.md, "Webhooks").
    public var isPublic: Bool {
        if isV4 { return Self.isPublicV4(bytes) }
        let b = bytes
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff {
            return Self.isPublicV4(Array(b[12..<16]))  // ::ffff:a.b.c.d
        }
        if b[0..<12].allSatisfy({ $0 == 0 }) { return false }  // ::, ::1, ::a.b.c.d (deprecated)
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b {
            return Self.isPublicV4(Array(b[12..<16]))  // 64:ff9b::/96 NAT64
        }
        if b[0] == 0x20 && b[1] == 0x02 { return Self.isPublicV4(Array(b[2..<6])) }  // 2002::/16 6to4
        if b[0] & 0xfe == 0xfc { return false }  // fc00::/7 unique local (fd00:ec2::254 metadata)
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return false }  // fe80::/10 link-local
        if b[0] == 0xfe && b[1] & 0xc0 == 0xc0 { return false }  // fec0::/10 site-local
        if b[0] == 0xff { return false }  // multicast
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return false }  // 2001:db8::/32 documentation
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00 { return false }  // 2001::/32 Teredo
        if b[0] == 0x01 && b[1] == 0x00 && b[2..<8].allSatisfy({ $0 == 0 }) { return false }  // 100::/64 discard
        // Global unicast is 2000::/3; nothing else is routed on the internet.
        return b[0] & 0xe0 == 0x20
    }

    private static func isPublicV4(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1], a[2]) {
        case (0, _, _), (10, _, _), (127, _, _): return false
        case (100, 64...127, _): return false  // shared address space (CGNAT)
        case (169, 254, _): return false  // link-local, cloud metadata
        case (172, 16...31, _): return false
        case (192, 0, 0), (192, 0, 2), (192, 88, 99), (192, 168, _): return false
        case (198, 18...19, _), (198, 51, 100), (203, 0, 113): return false
        case (224...255, _, _): return false  // multicast, reserved, broadcast
        default: return true
        }
    }
}

/// A webhook's URL, checked against server-side request forgery (docs/protocol.md, "webhooks").
public struct WebhookURL: Sendable, Equatable {
    public let text: String
    public let isHTTPS: Bool
    /// The host as written, without brackets for IPv6 literals.
    public let host: String
    public let port: Int
    /// Path and query, `/` at least.
    public let target: String
    /// The address when the host is an IP literal.
    public let literalAddress: IPAddress?

    /// Names that are never public, whatever DNS says about them.
    static func isInternalName(_ host: String) -> Bool {
        let name = host.lowercased().hasSuffix(".") ? String(host.lowercased().dropLast()) : host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        for suffix in [".local", ".internal", ".localdomain", ".home.arpa", ".lan"] where name.hasSuffix(suffix) {
            return true
        }
        // Numeric forms that resolvers read as IPv4 (`2130706433`, `0x7f.1`, `127.1`).
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ $0.allSatisfy(\.isNumber) || $0.hasPrefix("0x") }) { return true }
        // metadata, metadata.google.internal (above), single-label names of a private network
        return !name.contains(".")
    }

    /// Parses and checks `text`; `allowInsecure` (development only) admits `http://` and
    /// non-public addresses. Names are checked again when they are resolved, at each delivery.
    public init(_ text: String, allowInsecure: Bool) throws(DomainError) {
        func refuse(_ why: String) -> DomainError { DomainError.invalidParams("url", why) }
        guard text.utf8.count <= 2000 else { throw refuse("must be at most 2000 characters") }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw refuse("must be an absolute https:// URL")
        }
        guard scheme == "https" || (allowInsecure && scheme == "http") else {
            throw refuse("must be an https:// URL")
        }
        guard components.user == nil, components.password == nil else { throw refuse("must not contain credentials") }
        guard components.fragment == nil else { throw refuse("must not contain a fragment") }
        guard var host = components.host, !host.isEmpty else { throw refuse("must name a host") }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.contains("%") else { throw refuse("must not name a zone") }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw refuse("has no valid port") }
        let address = IPAddress(host)
        if !allowInsecure {
            if let address {
                guard address.isPublic else { throw refuse("must be a public address") }
            } else {
                guard !Self.isInternalName(host) else { throw refuse("must be a public address") }
            }
        }
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        self.text = text
        self.isHTTPS = scheme == "https"
        self.host = host
        self.port = port
        self.target = target
        self.literalAddress = address
    }
}
