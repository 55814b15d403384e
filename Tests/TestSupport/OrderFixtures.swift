import Customers
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
            INSERT INTO forecourt.customers (dealer_group_id, id, key_id, full_name, name_bidx, notify_email, notify_sms,
                customer_key)
            VALUES (\(group), \(id), \(Int32(cipher.newestKeyID)), \(sealed), \(index), \(notifyEmail), \(notifySMS),
                \(CustomerPseudonym.key(cipher: cipher, group: group, customer: id)))
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

/// A valid VIN (its check digit computed) ending in `serial` as six digits, unique per serial
/// and `plant` (a letter or digit, not I, O or Q).
public func testVIN(_ serial: Int, plant: Character = "A") -> String {
    let body = Array("1FCTESTS") + ["0", "T", plant] + Array(String(format: "%06d", serial % 1_000_000))
    let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
    func value(_ c: Character) -> Int {
        if let digit = c.wholeNumberValue { return digit }
        let letters: [Character: Int] = [
            "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8, "J": 1, "K": 2, "L": 3, "M": 4, "N": 5,
            "P": 7, "R": 9, "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
        ]
        return letters[c] ?? 0
    }
    let sum = zip(body, weights).reduce(0) { $0 + value($1.0) * $1.1 }
    var vin = body
    vin[8] = sum % 11 == 10 ? "X" : Character(String(sum % 11))
    return String(vin)
}
