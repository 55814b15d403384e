import FieldCrypto
import ForecourtCore
import Foundation
import Postgres

/// What the service benchmark and its pgbench ceilings draw from: a random sample of the
/// seeded group's orders, made once per run by the owner, in `public.bench_sample` (readable
/// by `forecourt_app`, so that pgbench scripts can pick the same rows).
///
/// Whatever seeded the database, the sampled orders are made usable by every workload: they
/// are in a stage that takes an ETA revision, they have a VIN, and their customer has a known
/// name whose blind index (computed with the service's keyring) is stored, so `track.lookup`
/// finds them.
struct BenchSample: Sendable {
    struct Order: Sendable {
        let n: Int
        let id: UUID
        let orderNumber: String
        let customerID: UUID
        let vinLast8: String
        let fullName: String
    }

    let group: UUID
    let orders: [Order]
    /// The group's number of orders.
    let groupOrders: Int
    /// The keyset position (created_at in microseconds, id) that ends page `deepPage - 1` of
    /// the group's newest-first list with `deepLimit` items a page, or nil if the group is smaller.
    let deepPosition: (micros: Int, id: UUID)?
    static let deepPage = 1000
    static let deepLimit = 10

    /// Samples `count` orders of `group` and prepares them (see the type's comment).
    static func make(owner: PostgresConnection, group: UUID, count: Int, cipher: FieldCipher) throws -> BenchSample {
        let groupOrders = try owner.query("SELECT count(*) FROM forecourt.orders WHERE dealer_group_id = \(group)")
            .first!.decode(0, as: Int.self)
        try owner.transaction { connection in
            try connection.execute(
                unsafeSQL: """
                    DROP TABLE IF EXISTS public.bench_sample;
                    CREATE TABLE public.bench_sample (
                        n integer PRIMARY KEY, group_id uuid NOT NULL, order_id uuid NOT NULL, order_number text NOT NULL,
                        customer_id uuid NOT NULL, dealer_id uuid NOT NULL, vin_last8 text NOT NULL, full_name text NOT NULL);
                    GRANT USAGE ON SCHEMA public TO forecourt_app;
                    GRANT SELECT ON public.bench_sample TO forecourt_app;
                    DROP TABLE IF EXISTS public.bench_position;
                    CREATE TABLE public.bench_position (created_at timestamptz NOT NULL, order_id uuid NOT NULL);
                    GRANT SELECT ON public.bench_position TO forecourt_app;
                    """)
            // Orders that still take events; TABLESAMPLE keeps this cheap at a million rows.
            let percent = min(100.0, max(1.0, Double(count) * 300.0 / Double(max(groupOrders, 1))))
            try connection.query(
                """
                INSERT INTO public.bench_sample (n, group_id, order_id, order_number, customer_id, dealer_id, vin_last8, full_name)
                SELECT row_number() OVER (), dealer_group_id, id, order_number, customer_id, dealer_id, '', ''
                FROM (SELECT * FROM forecourt.orders TABLESAMPLE SYSTEM (\(percent))
                      WHERE dealer_group_id = \(group) AND stage NOT IN ('delivered', 'cancelled')
                      ORDER BY random() LIMIT \(count)) o
                """)
            // Each sampled order gets a VIN (kept if it has one; derived from its id, so the same in
            // every run, and ending with a letter, unlike the seed's) and its customer a name.
            try connection.query(
                """
                UPDATE forecourt.orders o
                SET vin = 'BNCS00000S' || upper(substr(md5(o.id::text), 1, 7))
                FROM public.bench_sample s
                WHERE o.dealer_group_id = s.group_id AND o.id = s.order_id AND o.vin IS NULL
                """)
            // track.lookup of an order whose vin_last8 another order shares compares both: fine
            // for the service, but the pgbench script wants one row. Such orders are left out.
            try connection.query(
                """
                DELETE FROM public.bench_sample s USING forecourt.orders o
                WHERE o.dealer_group_id = s.group_id AND o.id = s.order_id AND EXISTS (
                    SELECT 1 FROM forecourt.orders x WHERE x.vin_last8 = o.vin_last8 AND x.id <> o.id)
                """)
            // The pgbench scripts draw n from 1 to the count: number the rows left without gaps
            // (through negative numbers, so that no two rows share an n on the way).
            try connection.query(
                """
                UPDATE public.bench_sample s SET n = -r.rank
                FROM (SELECT n, row_number() OVER (ORDER BY n) AS rank FROM public.bench_sample) r WHERE s.n = r.n
                """)
            try connection.query("UPDATE public.bench_sample SET n = -n")
            try connection.query(
                """
                UPDATE public.bench_sample s SET vin_last8 = o.vin_last8, full_name = 'Bench Customer ' || left(s.customer_id::text, 8)
                FROM forecourt.orders o WHERE o.dealer_group_id = s.group_id AND o.id = s.order_id
                """)
            let rows = try connection.query("SELECT customer_id, full_name FROM public.bench_sample").rows
            let customers = try rows.map { try $0.decode(0, as: UUID.self) }
            let indexes = try rows.map { row -> [UInt8] in
                let name: String = try row.decode(1)
                return cipher.blindIndex(Normalize.fullName(name) ?? name, group: group, kind: .fullName)
            }
            // One name per customer (two sampled orders may share one).
            try connection.query(
                """
                UPDATE forecourt.customers c SET name_bidx = u.idx
                FROM (SELECT DISTINCT ON (id) id, idx FROM unnest(\(customers)::uuid[], \(indexes)::bytea[]) AS u(id, idx)) u
                WHERE c.dealer_group_id = \(group) AND c.id = u.id
                """)
            let position = Self.deepLimit * (Self.deepPage - 1)
            if groupOrders >= position + Self.deepLimit {
                try connection.query(
                    """
                    INSERT INTO public.bench_position
                    SELECT created_at, id FROM forecourt.orders WHERE dealer_group_id = \(group)
                    ORDER BY created_at DESC, id DESC OFFSET \(position - 1) LIMIT 1
                    """)
            }
        }
        try owner.execute(unsafeSQL: "ANALYZE public.bench_sample; ANALYZE forecourt.customers")
        let orders = try owner.query(
            """
            SELECT n::int8, order_id, order_number, customer_id, vin_last8, full_name FROM public.bench_sample s
            WHERE (SELECT c.name_bidx FROM forecourt.customers c WHERE c.dealer_group_id = s.group_id AND c.id = s.customer_id)
                IS NOT NULL
            ORDER BY n
            """
        ).rows.map {
            Order(
                n: try $0.decode(0), id: try $0.decode(1), orderNumber: try $0.decode(2), customerID: try $0.decode(3),
                vinLast8: try $0.decode(4), fullName: try $0.decode(5))
        }
        let deep = try owner.query(
            "SELECT (extract(epoch FROM created_at) * 1000000)::int8, order_id FROM public.bench_position"
        ).first.map { (micros: try $0.decode(0, as: Int.self), id: try $0.decode(1, as: UUID.self)) }
        return BenchSample(group: group, orders: orders, groupOrders: groupOrders, deepPosition: deep)
    }
}
