import Foundation

/// Who is calling: an API key's (or a client certificate's) principal.
public struct Principal: Sendable, Hashable {
    public let id: UUID
    public let role: Role
    /// Nil for principals that span every group (`factory`, global `portal`).
    public let dealerGroupID: UUID?
    /// Set for dealer-scoped roles (`dealer_manager`, `sales`).
    public let dealerID: UUID?
    public let label: String

    public init(id: UUID, role: Role, dealerGroupID: UUID?, dealerID: UUID?, label: String) {
        self.id = id
        self.role = role
        self.dealerGroupID = dealerGroupID
        self.dealerID = dealerID
        self.label = label
    }

    /// The principal's group, or `forbidden` for principals that span every group: used by
    /// methods that only make sense inside one group.
    public func requireGroup() throws -> UUID {
        guard let dealerGroupID else { throw DomainError.forbidden("this method needs a principal of one dealer group") }
        return dealerGroupID
    }

    /// Whether this principal may see objects of `dealerID` in `groupID`: group-wide roles see
    /// every dealer of their group, dealer roles only their own dealer.
    public func maySeeDealer(_ dealerID: UUID, inGroup groupID: UUID) -> Bool {
        if role == .factory { return true }
        guard dealerGroupID == groupID else { return false }
        if role.isDealerScoped { return self.dealerID == dealerID }
        return true
    }
}
