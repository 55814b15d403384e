import Foundation

/// Where an encrypted field lives. It is bound into the envelope's authenticated data, so a
/// ciphertext copied to another group, table, column or row fails to open.
public struct FieldContext: Hashable, Sendable {
    /// The dealer group that owns the row; also selects the data key.
    public var group: UUID
    /// The table, for example `customers`.
    public var table: String
    /// The column, for example `email`.
    public var column: String
    /// The row's primary key.
    public var row: UUID

    public init(group: UUID, table: String, column: String, row: UUID) {
        self.group = group
        self.table = table
        self.column = column
        self.row = row
    }
}

/// What a blind index is over. Each kind has its own key, so equal values of different kinds
/// (a phone number that is also someone's name) give unrelated indexes.
public struct BlindIndexKind: RawRepresentable, Hashable, Sendable {
    /// The label used in key derivation; lowercase letters and underscores by convention.
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// A normalised email address (`Normalize.email`).
    public static let email = BlindIndexKind(rawValue: "email")
    /// A phone number in E.164 form (`Normalize.phone`).
    public static let phone = BlindIndexKind(rawValue: "phone")
    /// A normalised full name (`Normalize.fullName`).
    public static let fullName = BlindIndexKind(rawValue: "full_name")
}
