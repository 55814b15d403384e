import ArgumentParser
import Customers
import FieldCrypto
import Foundation
import Postgres

/// `forecourt analyst`: which PostgreSQL login roles may read the schema `analytics`, and for
/// which dealer groups (docs/analytics.md, "Access").
///
/// `grant` makes an existing login role a member of `forecourt_analyst` and records its scope
/// in `forecourt.analyst_grants`, keyed on the role's oid; every view admits the groups of the
/// row of `session_user`, which no setting, `SET ROLE` or `RESET` changes. Both commands are
/// idempotent and print what they did.
struct AnalystCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyst",
        abstract: "Let PostgreSQL login roles read the analytics schema, optionally one dealer group only.",
        subcommands: [Grant.self, Revoke.self, List.self, Backfill.self])

    /// A login role as the catalog knows it.
    struct LoginRole {
        let oid: UInt32
        let name: String
        let canLogin: Bool
        let superuser: Bool
        let bypassesRLS: Bool
        /// A member of forecourt_app (directly or not) could `SET ROLE forecourt_app` and choose
        /// any group in the service's own settings, and a member of the schema's owner could read
        /// the tables: never an analyst.
        let actsAsService: Bool
        /// A direct member of forecourt_analyst.
        let isAnalyst: Bool

        static func find(_ connection: PostgresConnection, _ name: String) throws -> LoginRole? {
            try connection.query(
                """
                SELECT r.oid::int8, r.rolname::text, r.rolcanlogin, r.rolsuper, r.rolbypassrls,
                    pg_has_role(r.oid, 'forecourt_app', 'MEMBER') OR pg_has_role(r.oid,
                        (SELECT nspowner FROM pg_namespace WHERE nspname = 'forecourt'), 'MEMBER'),
                    EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid
                        AND m.roleid = 'forecourt_analyst'::regrole)
                FROM pg_roles r WHERE r.rolname = \(name)
                """
            ).first.map { row in
                LoginRole(
                    oid: UInt32(try row.decode(0, as: Int.self)), name: try row.decode(1), canLogin: try row.decode(2),
                    superuser: try row.decode(3), bypassesRLS: try row.decode(4), actsAsService: try row.decode(5),
                    isAnalyst: try row.decode(6))
            }
        }
    }

    /// The statement that grants or revokes forecourt_analyst for `role`, its name quoted by
    /// the server (`format('%I')`), never spliced in by us.
    static func membershipStatement(_ connection: PostgresConnection, grant: Bool, role: String) throws -> String {
        let template = grant ? "GRANT forecourt_analyst TO %I" : "REVOKE forecourt_analyst FROM %I"
        guard let text = try connection.query("SELECT format(\(template), \(role)::text)").first?.decode(0, as: String.self) else {
            throw ValidationError("ROLE: cannot be quoted")
        }
        return text
    }

    /// `grant`: makes `role` an analyst of `group` (every group when nil); returns what it did.
    static func grant(on connection: PostgresConnection, role: String, group groupID: UUID?) throws -> String {
        try connection.transaction { connection -> String in
            guard let login = try LoginRole.find(connection, role) else {
                throw ValidationError("ROLE: no role named \(role) (create the login first)")
            }
            guard login.canLogin else {
                throw ValidationError("ROLE: \(role) cannot log in; limits are kept per login role")
            }
            guard !login.superuser, !login.bypassesRLS else {
                throw ValidationError("ROLE: \(role) is a superuser or BYPASSRLS and can read every table; use an ordinary login")
            }
            guard !login.actsAsService else {
                throw ValidationError("ROLE: \(role) is a member of forecourt_app or of the owner and could read every group; use another login")
            }
            if let groupID {
                guard try connection.query("SELECT 1 FROM forecourt.dealer_groups WHERE id = \(groupID)").count == 1 else {
                    throw ValidationError("--group: no such dealer group")
                }
            }
            let previous = try connection.query(
                "SELECT dealer_group_id FROM forecourt.analyst_grants WHERE role_oid = \(Int(login.oid))::oid"
            ).first.map { try $0.decode(0, as: UUID?.self) }
            if !login.isAnalyst {
                try connection.execute(unsafeSQL: try membershipStatement(connection, grant: true, role: role))
            }
            try connection.query(
                """
                INSERT INTO forecourt.analyst_grants (role_oid, role_name, dealer_group_id)
                VALUES (\(Int(login.oid))::oid, \(role), \(groupID))
                ON CONFLICT (role_oid) DO UPDATE SET role_name = EXCLUDED.role_name,
                    dealer_group_id = EXCLUDED.dealer_group_id, granted_at = now()
                """)
            let scope = groupID.map { "dealer group \($0.uuidString.lowercased()) only" } ?? "every dealer group"
            switch (login.isAnalyst, previous) {
            case (true, .some(groupID)):
                return "\(role) is already an analyst of \(scope): nothing changed"
            case (true, .some):
                return "\(role) is an analyst; its scope is now \(scope)"
            default:
                return "granted forecourt_analyst to \(role): it reads the analytics views of \(scope)"
            }
        }
    }

    /// `revoke`: takes `role`'s access away; returns what it did.
    static func revoke(on connection: PostgresConnection, role: String) throws -> String {
        try connection.transaction { connection -> String in
            let login = try LoginRole.find(connection, role)
            let removed = try connection.query(
                """
                DELETE FROM forecourt.analyst_grants
                WHERE role_name = \(role) OR role_oid = \(login.map { Int($0.oid) } ?? 0)::oid
                RETURNING 1
                """
            ).count
            if let login, login.isAnalyst {
                try connection.execute(unsafeSQL: try membershipStatement(connection, grant: false, role: role))
                return "revoked forecourt_analyst from \(role): it reads no analytics view now"
            }
            return removed > 0
                ? "removed the analytics scope of \(role), which was not a member of forecourt_analyst"
                : "\(role) is not an analyst: nothing changed"
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an existing login role an analyst: it may read every analytics view (of one group with --group).",
            discussion: """
                Running it again with another --group (or none) changes the role's scope. The role \
                must be able to log in and must not be a superuser, BYPASSRLS, or a member of \
                forecourt_app (which could read every group through the service's role).
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The PostgreSQL login role.")
        var role: String

        @Option(help: "Limit the role to this dealer group's rows in every view.")
        var group: String?

        func run() throws {
            let groupID = try group.map { text -> UUID in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--group: not a UUID") }
                return id
            }
            let connection = try database.connect()
            defer { connection.close() }
            print(try AnalystCommand.grant(on: connection, role: role, group: groupID))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a role's access to the analytics views away (idempotent).")

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The PostgreSQL login role.")
        var role: String

        func run() throws {
            let connection = try database.connect()
            defer { connection.close() }
            print(try AnalystCommand.revoke(on: connection, role: role))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the analyst roles and their scope.")

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            defer { connection.close() }
            let rows = try connection.query(
                """
                SELECT a.role_name::text, a.dealer_group_id, a.granted_at, r.oid IS NULL
                FROM forecourt.analyst_grants a LEFT JOIN pg_roles r ON r.oid = a.role_oid
                ORDER BY a.role_name
                """
            ).rows
            if rows.isEmpty { print("no analyst roles") }
            for row in rows {
                let name: String = try row.decode(0)
                let group: UUID? = try row.decode(1)
                let dropped: Bool = try row.decode(3)
                print("\(name)\t\(group?.uuidString.lowercased() ?? "every group")\(dropped ? "\t(role dropped)" : "")")
            }
        }
    }

    struct Backfill: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the analytics pseudonym (customer_key) of every customer that has none, in batches.",
            discussion: """
                Customers created by the service get theirs when they are written; this is for rows \
                from before migration 0007 or from tools that bypass the service. Needs the keyring \
                the service uses; resumable; the service keeps running.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(name: .long, help: ArgumentHelp("The keyring file (default: $FORECOURT_KEYRING).", valueName: "path"))
        var keyring: String?

        @Option(name: .customLong("batch-size"), help: "Customers per transaction.")
        var batchSize = 1000

        func validate() throws {
            guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 10000") }
        }

        func run() throws {
            let path = try KeyringCommand.keyringPath(keyring, optionName: "--keyring")
            let cipher = FieldCipher(keyring: try Keyring.load(path: path))
            let connection = try database.connect()
            defer { connection.close() }
            let written = try CustomerPseudonym.backfill(connection: connection, cipher: cipher, batchSize: batchSize) {
                print("\($0) customers given a customer_key so far")
            }
            print("done: \(written) customers given a customer_key")
        }
    }
}
