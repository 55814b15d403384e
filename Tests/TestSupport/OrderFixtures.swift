import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC

extension TestDatabase {
    /// Inserts a customer the way the customers area stores one (full name sealed to its row,
    /// the name's blind index), through the owner connection: for order tests that must not
    /// depend on `customer.create`.
    public func insertTestCustomer(
        group: UUID, cipher: FieldCipher, fullName: String, notifyEmail: Bool = true, notifySMS: Bool = false
    ) throws -> UUID {
        let owner = try ownerConnection()
        defer { owner.close() }
        let id = UUID()
        let sealed = try cipher.seal(fullName, context: FieldContext(group: group, table: "customers", column: "full_name", row: id))
        let index = cipher.blindIndex(Normalize.fullName(fullName) ?? "", group: group, kind: .fullName)
        try owner.query(
            """
            INSERT INTO forecourt.customers (dealer_group_id, id, key_id, full_name, name_bidx, notify_email, notify_sms)
            VALUES (\(group), \(id), \(Int32(cipher.newestKeyID)), \(sealed), \(index), \(notifyEmail), \(notifySMS))
            """)
        return id
    }
}

/// `order.create` parameters with sensible defaults.
public func orderParams(customer: UUID, key: String = UUID().uuidString, dealer: UUID? = nil, color: String = "Glacier White") -> JSON {
    var params: JSONObject = [
        "customer_id": customer.json, "model": ["code": "XC40", "year": 2027, "trim": "Plus"],
        "exterior_color": .string(color), "interior_color": "Charcoal", "options": ["TOW", "PANO"],
        "idempotency_key": .string(key),
    ]
    if let dealer { params.members.append((key: "dealer_id", value: dealer.json)) }
    return .object(params)
}
