import Foundation
import Postgres

/// Dealer groups: the tenants. Created by the operator (`forecourt group create`), never by a call.
public enum DealerGroups {
    /// Creates a group on an owner connection and returns its id.
    public static func create(on connection: PostgresConnection, name: String) throws -> UUID {
        let id = UUID()
        try connection.query("INSERT INTO forecourt.dealer_groups (id, name) VALUES (\(id), \(name))")
        return id
    }
}
