import FieldCrypto
import Foundation
import Postgres

extension CustomerService {
    /// One customer, decrypted, read in the caller's transaction (which must be scoped to
    /// `group`): how the notification dispatcher renders a message at send time, so that no
    /// address or body is ever stored in clear. Nil when there is no such customer; an erased
    /// customer has no content.
    public static func read(_ connection: PostgresConnection, group: UUID, id: UUID, cipher: FieldCipher) throws -> Customer? {
        try select(connection, group: group, id: id, forUpdate: false)?.open(CustomerCrypto(cipher: cipher, group: group))
    }
}
