/// The roles of docs/protocol.md ("Roles"). The raw values are the contract's names.
public enum Role: String, Sendable, CaseIterable, Hashable, Codable {
    case groupAdmin = "group_admin"
    case dealerManager = "dealer_manager"
    case sales
    case crmSync = "crm_sync"
    case auditor
    case factory
    case portal

    /// Roles whose keys are scoped to one dealer (and so carry a `dealer_id`).
    public var isDealerScoped: Bool {
        self == .dealerManager || self == .sales
    }

    /// Roles that may exist without a dealer group (`portal` may also have one).
    public var mayBeGlobal: Bool {
        self == .factory || self == .portal
    }

    /// Roles that must be global: a factory key spans all groups.
    public var mustBeGlobal: Bool { self == .factory }

    /// The dealer roles that may record `at_dealer` and `delivered`.
    public var isDealerStaff: Bool {
        self == .groupAdmin || self == .dealerManager || self == .sales
    }

    /// Every role but the ones listed.
    public static func all(except excluded: Set<Role> = []) -> Set<Role> {
        Set(allCases).subtracting(excluded)
    }
}
