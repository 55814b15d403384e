import ForecourtCore
import Foundation
import RPC

/// A customer's postal address. Every line is personal data and encrypted at rest.
public struct CustomerAddress: Sendable, Equatable {
    public var line1: String?
    public var line2: String?
    public var city: String?
    public var region: String?
    public var postalCode: String?
    public var country: String?

    public init(
        line1: String? = nil, line2: String? = nil, city: String? = nil, region: String? = nil,
        postalCode: String? = nil, country: String? = nil
    ) {
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.region = region
        self.postalCode = postalCode
        self.country = country
    }
}

/// What a customer says about themselves: the personal fields (encrypted at rest) and the
/// notification opt-ins. `content_mac` is computed over exactly this, so two equal contents
/// are recognised without decrypting (a CRM upsert that changes nothing).
public struct CustomerContent: Sendable, Equatable {
    public var fullName: String
    /// Stored normalised (trimmed, lowercase), as `Normalize.email` returns it.
    public var email: String?
    /// Stored in E.164, as `Normalize.phone` returns it.
    public var phone: String?
    public var address: CustomerAddress
    public var notifyEmail: Bool
    public var notifySMS: Bool

    public init(
        fullName: String, email: String? = nil, phone: String? = nil, address: CustomerAddress = CustomerAddress(),
        notifyEmail: Bool = false, notifySMS: Bool = false
    ) {
        self.fullName = fullName
        self.email = email
        self.phone = phone
        self.address = address
        self.notifyEmail = notifyEmail
        self.notifySMS = notifySMS
    }

    /// The encrypted columns of `customers`, in the order of `encryptedValues`.
    static let encryptedColumns = [
        "full_name", "email", "phone", "address_line1", "address_line2", "city", "region", "postal_code", "country",
    ]

    /// The values of `encryptedColumns`, in order.
    var encryptedValues: [String?] {
        [fullName, email, phone, address.line1, address.line2, address.city, address.region, address.postalCode, address.country]
    }

    /// Rebuilds a content from decrypted `encryptedColumns` values; nil without a name.
    init?(encryptedValues values: [String?], notifyEmail: Bool, notifySMS: Bool) {
        guard values.count == Self.encryptedColumns.count, let fullName = values[0] else { return nil }
        self.init(
            fullName: fullName, email: values[1], phone: values[2],
            address: CustomerAddress(
                line1: values[3], line2: values[4], city: values[5], region: values[6], postalCode: values[7],
                country: values[8]),
            notifyEmail: notifyEmail, notifySMS: notifySMS)
    }
}

/// A customer of a dealer group (docs/protocol.md, "customers"). An erased customer keeps its id,
/// `external_ref` and `version` and nothing personal: `content` is nil.
public struct Customer: Sendable, Equatable {
    public let id: UUID
    public let dealerGroupID: UUID
    public let externalRef: String?
    /// Nil once erased.
    public let content: CustomerContent?
    public let version: Int
    public let createdAt: Date
    public let updatedAt: Date

    /// Whether the personal fields were destroyed by `customer.erase`.
    public var erased: Bool { content == nil }

    public init(
        id: UUID, dealerGroupID: UUID, externalRef: String?, content: CustomerContent?, version: Int, createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.dealerGroupID = dealerGroupID
        self.externalRef = externalRef
        self.content = content
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension Customer: JSONRepresentable {
    /// The contract's customer object; an erased customer shows its personal fields as null.
    public var json: JSON {
        let address = content?.address ?? CustomerAddress()
        return [
            "id": id.json, "dealer_group_id": dealerGroupID.json, "external_ref": externalRef.json,
            "full_name": content?.fullName.json ?? .null, "email": content?.email.json ?? .null,
            "phone": content?.phone.json ?? .null,
            "address": [
                "line1": address.line1.json, "line2": address.line2.json, "city": address.city.json,
                "region": address.region.json, "postal_code": address.postalCode.json, "country": address.country.json,
            ],
            "notify": ["email": .bool(content?.notifyEmail ?? false), "sms": .bool(content?.notifySMS ?? false)],
            "version": .int(version), "created_at": createdAt.json, "updated_at": updatedAt.json, "erased": .bool(erased),
        ]
    }
}
