import ForecourtCore
import Foundation
import Postgres
import RPC

/// A dealership of a group. Its `code` is assigned by the maker and unique across the service.
public struct Dealer: Sendable, Equatable {
    public let id: UUID
    public let dealerGroupID: UUID
    public let code: String
    public let name: String
    public let region: String?
    public let timezone: String?
    public let version: Int
    public let createdAt: Date
    public let updatedAt: Date

    static let columns = "id, dealer_group_id, code, name, region, timezone, version, created_at, updated_at"

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        dealerGroupID = try row.decode(1)
        code = try row.decode(2)
        name = try row.decode(3)
        region = try row.decode(4)
        timezone = try row.decode(5)
        version = try row.decode(6)
        createdAt = try row.decode(7)
        updatedAt = try row.decode(8)
    }
}

extension Dealer: JSONRepresentable {
    public var json: JSON {
        [
            "id": id.json, "dealer_group_id": dealerGroupID.json, "code": .string(code), "name": .string(name),
            "region": region.json, "timezone": timezone.json, "version": .int(version),
            "created_at": createdAt.json, "updated_at": updatedAt.json,
        ]
    }
}

/// Validation of dealer fields.
enum DealerRules {
    /// 2 to 12 letters and digits; letters are taken in upper case.
    static func code(_ text: String) throws -> String {
        let code = text.uppercased()
        guard (2...12).contains(code.count), code.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        else { throw DomainError.invalidParams("code", "must be 2 to 12 letters and digits") }
        return code
    }

    /// An IANA time zone name (`Europe/London`).
    static func timezone(_ text: String?) throws -> String? {
        guard let text else { return nil }
        guard TimeZone(identifier: text) != nil, text.contains("/") || text == "UTC" else {
            throw DomainError.invalidParams("timezone", "must be an IANA time zone name such as Europe/London")
        }
        return text
    }
}
