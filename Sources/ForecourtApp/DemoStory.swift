import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// What `forecourt dev` puts in the demo group the first time: a realistic dealer group to
/// open, made through the service's own methods so that every rule, timeline entry, outbox
/// notification and audit row is what real use makes.
///
/// - 36 customers by `customer.upsert_batch` (the CRM key), some with non-ASCII names, some
///   opted out of every channel.
/// - 30 delivered orders of the last ten months with their whole factory feed, enough delivered
///   history of one model for the analytics views and the delivery forecast. History is
///   imported the way a migration from an older system would: the feed's `occurred_at` lies in
///   the past, and the orders' creation time is moved back to match (as the database owner).
/// - 20 orders in flight: every stage, two holds, ETA revisions (one moved later), a late
///   event, a cancellation, and so delayed orders.
enum DemoStory {
    /// The three commands `forecourt dev` prints: an order's timeline, a tracking lookup, the
    /// delayed list.
    struct Highlights: Codable, Sendable {
        let timelineOrderID: String
        let trackingVINLast8: String
        let trackingName: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Calls methods in-process, as one authenticated session.
    struct Caller {
        let dispatcher: Dispatcher
        let session = Session(remoteAddress: "127.0.0.1")

        init(_ dispatcher: Dispatcher, apiKey: String) async throws {
            self.dispatcher = dispatcher
            _ = try await call("session.authenticate", ["api_key": .string(apiKey)])
        }

        @discardableResult
        func call(_ method: String, _ params: JSON) async throws -> JSON {
            let request: JSON = ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]
            guard let response = await dispatcher.handle(request, session: session) else {
                throw Failure(description: "\(method): no response")
            }
            if let error = response["error"] { throw Failure(description: "\(method): \(JSONWriter.string(error))") }
            return response["result"] ?? .null
        }
    }

    static let customers: [(name: String, email: String?, phone: String?, city: String, email_: Bool, sms: Bool)] = [
        ("José Müller", "jose.mueller@example.com", "+44 20 7946 0101", "Leeds", true, true),
        ("Zoë Fairfax", "zoe.fairfax@example.com", "+44 20 7946 0102", "York", true, false),
        ("Søren Ødegaard", "soren.odegaard@example.no", "+47 912 34 567", "Hull", true, true),
        ("Chloé Dubois", "chloe.dubois@example.fr", "+33 6 12 34 56 78", "Bradford", true, false),
        ("Łukasz Wróbel", "lukasz.wrobel@example.pl", "+48 512 345 678", "Sheffield", false, false),
        ("Ana Núñez", "ana.nunez@example.es", "+34 612 345 678", "Leeds", true, true),
        ("Siobhán O'Connor", "siobhan.oconnor@example.ie", "+353 85 123 4567", "Harrogate", true, false),
        ("Björn Ångström", "bjorn.angstrom@example.se", "+46 70 123 45 67", "York", false, false),
        ("Priya Natarajan", "priya.n@example.com", "+44 20 7946 0109", "Wakefield", true, true),
        ("Oliver Bennett", "oliver.bennett@example.com", "+44 20 7946 0110", "Leeds", true, false),
        ("Amelia Clarke", "amelia.clarke@example.com", nil, "Hull", true, false),
        ("Mohammed Rahman", "m.rahman@example.com", "+44 20 7946 0112", "Bradford", true, true),
        ("Grace Whitfield", "grace.whitfield@example.com", "+44 20 7946 0113", "Ripon", false, false),
        ("Thomas Ashworth", "t.ashworth@example.com", "+44 20 7946 0114", "Halifax", true, false),
        ("Isla McKenzie", "isla.mckenzie@example.com", "+44 20 7946 0115", "Selby", true, true),
        ("Jakub Dvořák", "jakub.dvorak@example.cz", "+420 601 234 567", "Leeds", true, false),
        ("Emily Hargreaves", "emily.h@example.com", "+44 20 7946 0117", "Skipton", true, false),
        ("Noah Patel", "noah.patel@example.com", "+44 20 7946 0118", "York", false, true),
        ("Freya Lindqvist", "freya.lindqvist@example.se", nil, "Hull", true, false),
        ("Kwame Mensah", "kwame.mensah@example.com", "+44 20 7946 0120", "Sheffield", true, true),
        ("Hannah Schäfer", "hannah.schaefer@example.de", "+49 151 2345 6789", "Leeds", true, false),
        ("William Thornton", "w.thornton@example.com", "+44 20 7946 0122", "Beverley", false, false),
        ("Aoife Brennan", "aoife.brennan@example.ie", "+353 87 765 4321", "Otley", true, false),
        ("Lucas Moreau", "lucas.moreau@example.fr", "+33 7 98 76 54 32", "Leeds", true, true),
        ("Charlotte Pemberton", "c.pemberton@example.com", "+44 20 7946 0125", "Ilkley", true, false),
        ("Dmitri Volkov", "dmitri.volkov@example.com", "+44 20 7946 0126", "York", true, false),
        ("Ingrid Håkansson", "ingrid.hakansson@example.se", "+46 73 987 65 43", "Hull", true, true),
        ("George Fairbairn", "g.fairbairn@example.com", "+44 20 7946 0128", "Doncaster", false, false),
        ("Mei Lin Chen", "meilin.chen@example.com", "+44 20 7946 0129", "Leeds", true, false),
        ("Rhys Llewellyn", "rhys.llewellyn@example.com", "+44 20 7946 0130", "Harrogate", true, true),
        ("Élodie Marchand", "elodie.marchand@example.fr", nil, "York", true, false),
        ("Samuel Okafor", "samuel.okafor@example.com", "+44 20 7946 0132", "Bradford", true, false),
        ("Ruby Castellanos", "ruby.castellanos@example.com", "+44 20 7946 0133", "Leeds", true, true),
        ("Henry Ellwood", "henry.ellwood@example.com", "+44 20 7946 0134", "Pickering", true, false),
        ("Matilda Rowntree", "matilda.rowntree@example.com", "+44 20 7946 0135", "York", false, false),
        ("Kenji Watanabe", "kenji.watanabe@example.jp", "+81 90 1234 5678", "Hull", true, false),
    ]

    static let stagesAfterOrdered: [OrderStage] = [.scheduled, .frame, .paint, .trim, .finalInspection, .shipped, .atDealer, .delivered]
    /// Days after creation at which a delivered order of the demo reached each stage.
    static let usualDays: [OrderStage: Int] = [
        .scheduled: 6, .frame: 34, .paint: 37, .trim: 40, .finalInspection: 44, .shipped: 47, .atDealer: 63, .delivered: 66,
    ]

    /// Seeds the story. `database` acts as the service; `owner` is the owner's connection, used
    /// only to move imported orders' creation time back.
    static func seed(
        database: AppDatabase, cipher: FieldCipher, owner: PostgresConnection, keys: DemoData.Keys, now: Date = Date()
    ) async throws -> Highlights {
        let wiring = ServiceWiring(database: database, cipher: cipher)
        let dispatcher = wiring.dispatcher(logger: .init(label: "forecourt.demo"))
        func key(_ role: Role) throws -> String {
            guard let key = keys.keys.first(where: { $0.role == role.rawValue })?.apiKey else {
                throw Failure(description: "the demo has no \(role.rawValue) key")
            }
            return key
        }
        let admin = try await Caller(dispatcher, apiKey: try key(.groupAdmin))
        let crm = try await Caller(dispatcher, apiKey: try key(.crmSync))
        let factory = try await Caller(dispatcher, apiKey: try key(.factory))
        let dealers = keys.dealers.keys.sorted().compactMap { keys.dealers[$0] }
        let day: TimeInterval = 86_400

        // Customers, as a CRM would bring them.
        let records: [JSON] = customers.enumerated().map { index, customer in
            [
                "external_ref": .string("CRM-\(1000 + index)"), "full_name": .string(customer.name),
                "email": customer.email.json, "phone": customer.phone.json,
                "address": ["line1": .string("\(index + 1) Station Road"), "city": .string(customer.city), "country": "GB"],
                "notify": ["email": .bool(customer.email_), "sms": .bool(customer.sms)],
                "source_updated_at": .string(RFC3339.format(now.addingTimeInterval(-400 * day))),
            ]
        }
        let upserted = try await crm.call("customer.upsert_batch", ["records": .array(records)])
        let customerIDs = (upserted["results"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        guard customerIDs.count == customers.count else { throw Failure(description: "customers were not all created") }

        var serial = 0
        func vin() -> String {
            serial += 1
            let body = Array("1FCDM" + "A" + "2" + "B" + "0" + "T" + "L" + String(format: "%06d", 100_000 + serial * 37))
            return VIN.completing(String(body)) ?? ""
        }
        func at(_ created: Date, _ days: Double) -> JSON { .string(RFC3339.format(created.addingTimeInterval(days * day))) }

        /// Creates an order and moves its creation back to `created` (an import of history).
        func order(_ number: Int, customer: Int, dealer: Int, model: String, color: String, created: Date) async throws -> String {
            let made = try await admin.call(
                "order.create",
                [
                    "dealer_id": .string(dealers[dealer % dealers.count]), "customer_id": .string(customerIDs[customer % customerIDs.count]),
                    "model": ["code": .string(model), "year": 2026, "trim": number % 3 == 0 ? "GT" : "Touring"],
                    "exterior_color": .string(color), "options": number % 2 == 0 ? ["HEATPUMP", "TOWBAR"] : ["HEATPUMP"],
                    "idempotency_key": .string("demo-\(number)"),
                ])
            guard let id = made["id"]?.stringValue, let uuid = UUID(uuidString: id) else { throw Failure(description: "order.create") }
            try owner.query(
                """
                UPDATE forecourt.orders SET created_at = \(created), stage_entered_at = \(created), updated_at = \(created)
                WHERE id = \(uuid)
                """)
            try owner.query("UPDATE forecourt.order_events SET occurred_at = \(created) WHERE order_id = \(uuid) AND event = 'ordered'")
            return id
        }

        /// Feeds the stages up to `last`, on the usual timetable stretched by `slower` days.
        func feed(_ id: String, created: Date, through last: OrderStage, slower: Double = 0, eta etaDays: Double = 75) async throws -> String? {
            var assigned: String?
            for stage in stagesAfterOrdered where stage <= last {
                let days = Double(usualDays[stage] ?? 0) + (stage >= .frame ? slower : 0)
                var params: JSON = ["id": .string(id), "event": .string(stage.rawValue), "occurred_at": at(created, days)]
                if case .object(var object) = params {
                    if stage == .scheduled {
                        object["scheduled_week"] = .string(isoWeek(created.addingTimeInterval(30 * day)))
                        object["eta"] = .string(date(created.addingTimeInterval(etaDays * day)))
                    }
                    if stage == .shipped {
                        let value = vin()
                        assigned = value
                        object["vin"] = .string(value)
                    }
                    params = .object(object)
                }
                let caller = stage >= .delivered ? admin : factory
                try await caller.call("order.record_event", params)
            }
            return assigned
        }

        // Delivered history: the last ten months, mostly on time, some late.
        let colors = ["Glacier White", "Obsidian Black", "Fjord Blue", "Copper Red", "Moss Green"]
        for index in 0..<30 {
            let created = now.addingTimeInterval(-Double(340 - index * 9) * day)
            let id = try await order(
                index, customer: index, dealer: index, model: index % 5 == 4 ? "CIRRUS" : "AURORA",
                color: colors[index % colors.count], created: created)
            _ = try await feed(id, created: created, through: .delivered, slower: Double((index * 7) % 12))
        }

        // In flight, in every stage, recent.
        var number = 100
        func inFlight(_ last: OrderStage?, customer: Int, ageDays: Double, model: String = "AURORA") async throws -> (id: String, created: Date, vin: String?) {
            number += 1
            let created = now.addingTimeInterval(-ageDays * day)
            let id = try await order(number, customer: customer, dealer: number, model: model, color: colors[number % colors.count], created: created)
            var vin: String?
            if let last { vin = try await feed(id, created: created, through: last) }
            return (id, created, vin)
        }
        _ = try await inFlight(nil, customer: 30, ageDays: 2)
        let toCancel = try await inFlight(nil, customer: 31, ageDays: 4)
        _ = try await inFlight(.scheduled, customer: 32, ageDays: 10)
        _ = try await inFlight(.scheduled, customer: 33, ageDays: 20, model: "CIRRUS")
        _ = try await inFlight(.frame, customer: 34, ageDays: 35)
        let late = try await inFlight(.paint, customer: 35, ageDays: 38)
        _ = try await inFlight(.paint, customer: 1, ageDays: 39)
        let partsHold = try await inFlight(.trim, customer: 2, ageDays: 42)
        _ = try await inFlight(.trim, customer: 3, ageDays: 41)
        let qualityHold = try await inFlight(.finalInspection, customer: 4, ageDays: 45)
        _ = try await inFlight(.finalInspection, customer: 6, ageDays: 46, model: "CIRRUS")
        let shipped = try await inFlight(.shipped, customer: 0, ageDays: 50)
        let revised = try await inFlight(.shipped, customer: 7, ageDays: 52)
        _ = try await inFlight(.atDealer, customer: 8, ageDays: 64)
        _ = try await inFlight(.atDealer, customer: 9, ageDays: 65)

        // A cancellation before production.
        try await admin.call("order.cancel", ["id": .string(toCancel.id), "version": 1, "reason": "customer chose a used car"])
        // A late event: the frame scan arrives after paint was recorded.
        try await factory.call(
            "order.record_event",
            ["id": .string(late.id), "event": "frame", "occurred_at": at(late.created, 33.5), "note": "scanner backlog"])
        // Holds.
        try await factory.call(
            "order.record_event",
            ["id": .string(partsHold.id), "event": "hold", "reason": "parts_shortage", "occurred_at": at(partsHold.created, 41),
             "note": "seat frames"])
        try await factory.call(
            "order.record_event",
            ["id": .string(qualityHold.id), "event": "hold", "reason": "quality_hold", "occurred_at": at(qualityHold.created, 44.5)])
        // ETA revisions: one earlier, then one later (a delay).
        try await factory.call(
            "order.record_event",
            ["id": .string(revised.id), "event": "eta", "reason": "other", "eta": .string(date(revised.created.addingTimeInterval(73 * day))),
             "occurred_at": at(revised.created, 48)])
        try await factory.call(
            "order.record_event",
            ["id": .string(revised.id), "event": "eta", "reason": "carrier_delay",
             "eta": .string(date(revised.created.addingTimeInterval(84 * day))), "occurred_at": at(revised.created, 50),
             "note": "vessel rerouted"])

        guard let shippedVIN = shipped.vin else { throw Failure(description: "no VIN on the shipped demo order") }
        return Highlights(
            timelineOrderID: revised.id, trackingVINLast8: String(shippedVIN.suffix(8)), trackingName: customers[0].name)
    }

    /// `YYYY-MM-DD` of a moment, in UTC.
    static func date(_ moment: Date) -> String {
        CalendarDate(daysSinceEpoch: Int((moment.timeIntervalSince1970 / 86_400).rounded(.down))).description
    }

    /// `YYYY-Www` of a moment (ISO 8601 week, UTC).
    static func isoWeek(_ moment: Date) -> String {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: moment)
        return ISOWeek(year: parts.yearForWeekOfYear ?? 2026, week: parts.weekOfYear ?? 1)?.description ?? "2026-W01"
    }
}
