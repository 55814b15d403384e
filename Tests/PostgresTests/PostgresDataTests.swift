import Foundation
import Postgres
import Testing
import TestSupport

@Suite struct PostgresDataTests {
    /// An empty array of any element type casts to `[UInt8]` in Swift; it must still be sent
    /// as an array, not as empty bytea data.
    @Test func emptyArraysAreArrays() async throws {
        try await withTestDatabase { db in
            let counts = try await db.pool.withConnection { connection in
                let row = try #require(
                    try connection.query(
                        "SELECT cardinality(\([] as [String])::text[]), cardinality(\([] as [UUID])::uuid[]), length(\([] as [UInt8])::bytea)"
                    ).first)
                return (try row.decode(0, as: Int.self), try row.decode(1, as: Int.self), try row.decode(2, as: Int.self))
            }
            #expect(counts.0 == 0)
            #expect(counts.1 == 0)
            #expect(counts.2 == 0)
        }
    }

    @Test func valuesRoundTripInBinaryFormat() async throws {
        try await withTestDatabase { db in
            let id = UUID()
            let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
            let bytes: [UInt8] = [0, 1, 2, 255]
            let row = try await db.pool.withConnection { connection in
                let result = try connection.query(
                    """
                    SELECT \("héllo")::text, \(42)::int8, \(Int32(-7))::int4, \(true)::bool, \(id)::uuid,
                           \(when)::timestamptz, \(PostgresDate(daysSinceUnixEpoch: 20_000))::date, \(bytes)::bytea,
                           \(PostgresJSONB(text: Array(#"{"a": 1}"#.utf8)))::jsonb, \(["a", nil, "c"] as [String?])::text[],
                           \([id])::uuid[], \([bytes, []])::bytea[], \(Optional<String>.none as String?)::text, 3::int2
                    """)
                let row = try #require(result.first)
                return (
                    try row.decode(0, as: String.self), try row.decode(1, as: Int.self), try row.decode(2, as: Int32.self),
                    try row.decode(3, as: Bool.self), try row.decode(4, as: UUID.self), try row.decode(5, as: Date.self),
                    try row.decode(6, as: PostgresDate.self), try row.decode(7, as: [UInt8].self),
                    try row.decode(8, as: PostgresJSONB.self), try row.decode(9, as: [String?].self),
                    try row.decode(10, as: [UUID].self), try row.decode(11, as: [[UInt8]].self),
                    try row.decode(12, as: String?.self), try row.decode(13, as: Int.self)
                )
            }
            #expect(row.0 == "héllo")
            #expect(row.1 == 42)
            #expect(row.2 == -7)
            #expect(row.3 == true)
            #expect(row.4 == id)
            #expect(abs(row.5.timeIntervalSince(when)) < 0.000_001)
            #expect(row.6.daysSinceUnixEpoch == 20_000)
            #expect(row.7 == bytes)
            #expect(String(decoding: row.8.text, as: UTF8.self) == #"{"a": 1}"#)
            #expect(row.9 == ["a", nil, "c"])
            #expect(row.10 == [id])
            #expect(row.11 == [bytes, []])
            #expect(row.12 == nil)
            #expect(row.13 == 3)
        }
    }

    @Test func dateMatchesPostgresCalendar() async throws {
        try await withTestDatabase { db in
            let days = try await db.pool.withConnection { connection in
                try connection.query("SELECT '2026-12-14'::date").first!.decode(0, as: PostgresDate.self)
            }
            // 2026-12-14 is 20,801 days after 1970-01-01.
            #expect(days.daysSinceUnixEpoch == 20_801)
        }
    }

    @Test func decodingTheWrongTypeIsAnError() async throws {
        try await withTestDatabase { db in
            let error = await #expect(throws: PostgresError.self) {
                try await db.pool.withConnection { connection in
                    try connection.query("SELECT 'x'::text").first!.decode(0, as: Int.self)
                }
            }
            #expect(error?.kind == .decoding)
            let null = await #expect(throws: PostgresError.self) {
                try await db.pool.withConnection { connection in
                    try connection.query("SELECT NULL::text").first!.decode(0, as: String.self)
                }
            }
            #expect(null?.kind == .decoding)
        }
    }

    @Test func interpolatedValuesAreNeverSQL() async throws {
        try await withTestDatabase { db in
            let hostile = "'); DROP TABLE forecourt.dealers; --"
            let echoed = try await db.pool.withConnection { connection in
                try connection.query("SELECT \(hostile)::text").first!.decode(0, as: String.self)
            }
            #expect(echoed == hostile)
            let query: PostgresQuery = "SELECT \(hostile)::text, \(1)::int8"
            #expect(query.sql == "SELECT $1::text, $2::int8")
        }
    }
}
