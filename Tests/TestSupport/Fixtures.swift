import Dealers
import ForecourtCore
import Foundation
import Identity
import Postgres
import RPC
import Storage

/// A dealer group with two dealers and one API key per role, made by the owner.
public struct GroupFixture: Sendable {
    public let group: UUID
    public let dealers: [UUID]
    public let dealerCodes: [String]
    /// API keys by role: dealer roles belong to `dealers[0]`.
    public let keys: [Role: String]
    public let principals: [Role: Principal]

    public func key(_ role: Role) -> String { keys[role]! }
    public func principal(_ role: Role) -> Principal { principals[role]! }
}

/// Dealer codes unique across the service within one test database.
private func uniqueCode() -> String {
    "T" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(9))
}

extension TestDatabase {
    /// Makes a group, two dealers and a key for every role (factory and portal included).
    public func makeGroup(name: String = "Test Group") throws -> GroupFixture {
        let owner = try ownerConnection()
        defer { owner.close() }
        let group = try DealerGroups.create(on: owner, name: name)
        var dealers: [UUID] = []
        var codes: [String] = []
        for index in 0..<2 {
            let id = UUID()
            let code = uniqueCode()
            try owner.query(
                "INSERT INTO forecourt.dealers (dealer_group_id, id, code, name) VALUES (\(group), \(id), \(code), \("Dealer \(index)"))"
            )
            dealers.append(id)
            codes.append(code)
        }
        var keys: [Role: String] = [:]
        var principals: [Role: Principal] = [:]
        for role in Role.allCases {
            let key = APIKey.generate()
            let record = try KeyRecord.insert(
                owner, role: role, group: role == .factory ? nil : group, dealer: role.isDealerScoped ? dealers[0] : nil,
                label: "test \(role.rawValue)", keyHash: key.hash, prefix: key.prefix, createdBy: nil)
            keys[role] = key.secret
            principals[role] = record.principal
        }
        return GroupFixture(group: group, dealers: dealers, dealerCodes: codes, keys: keys, principals: principals)
    }
}
