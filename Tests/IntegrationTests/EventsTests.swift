import Events
import ForecourtCore
import Foundation
import Orders
import Postgres
import RPC
import Synchronization
import Testing
import TestSupport

/// Collects a session's pushes; with a capacity, behaves like a full connection queue.
final class PushRecorder: Sendable {
    private struct State {
        var messages: [JSON] = []
        var capacity: Int
        /// Pushes refused for want of capacity.
        var refused = 0
    }

    private let state: Mutex<State>

    init(_ session: Session, capacity: Int = .max) {
        state = Mutex(State(capacity: capacity))
        session.setPushSink { [self] message in
            state.withLock { state in
                guard state.messages.count < state.capacity else {
                    state.refused += 1
                    return .dropped
                }
                state.messages.append(message)
                return .queued
            }
        }
    }

    var messages: [JSON] { state.withLock { $0.messages } }

    var refused: Int { state.withLock { $0.refused } }

    func methods() -> [String] { messages.compactMap { $0["method"]?.stringValue } }

    func setCapacity(_ capacity: Int) { state.withLock { $0.capacity = capacity } }
}

/// Runs a harness's listener and event hub as `forecourt serve` does, for the duration of
/// `body`, and stops them afterwards whatever happens.
func withEvents<T>(
    _ harness: DispatcherHarness, _ db: TestDatabase, _ body: (PostgresListener) async throws -> T
) async throws -> T {
    let listener = PostgresListener(
        connectionString: db.ownerConnectionString, channels: [OrderService.notifyChannel],
        maximumBackoff: .milliseconds(200))
    let hub = harness.wiring.events
    let task = Task {
        await withDiscardingTaskGroup { group in
            group.addTask { await listener.run() }
            group.addTask { await hub.run(listener) }
        }
    }
    defer {
        task.cancel()
        listener.stop()
    }
    try await eventually { listener.isListening }
    return try await body(listener)
}

@Suite struct EventsTests {
    @Test func aSubscriberOnAnotherInstanceSeesWhatItMaySee() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            let world = try await OrderWorld.make(db)
            // A second instance: its own dispatcher, hub and LISTEN connection, same database and keyring.
            let second = DispatcherHarness(db, cipher: world.harness.cipher)
            try await withEvents(world.harness, db) { _ in
                try await withEvents(second, db) { _ in
                    let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")

                    var recorders: [String: PushRecorder] = [:]
                    for (label, key) in [("admin", world.fixture.key(.groupAdmin)), ("sales", world.fixture.key(.sales)),
                                         ("factory", world.fixture.key(.factory)), ("stranger", other.fixture.key(.groupAdmin))] {
                        let session = try await second.session(authenticatedWith: key)
                        recorders[label] = PushRecorder(session)
                        let subscribed = try await second.call(session, "events.subscribe").get()
                        #expect(subscribed["subscription"]?.stringValue != nil)
                    }
                    // Made on the first instance, for dealer 1: the dealer-0 sales key must not see it.
                    let order = try await world.call(
                        .groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
                    try await eventually {
                        recorders["admin"]!.messages.count == 1 && recorders["factory"]!.messages.count == 1
                    }
                    let push = try #require(recorders["admin"]!.messages.first)
                    #expect(push["method"] == "order.updated")
                    #expect(push["params"]?["order"]?["id"] == order["id"])
                    #expect(push["params"]?["order"]?["customer_id"] == world.customer.json)
                    #expect(push["params"]?["event"]?["event"] == "ordered")
                    #expect(recorders["factory"]!.messages.first?["params"]?["order"]?["customer_id"] == .null)

                    // A change of the sales key's own dealer reaches it.
                    let mine = try await world.newOrder()
                    try await eventually { recorders["sales"]!.messages.count == 1 }
                    #expect(recorders["sales"]!.messages.first?["params"]?["order"]?["id"] == mine["id"])
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(recorders["stranger"]!.messages.isEmpty)
                    #expect(recorders["sales"]!.messages.count == 1)
                }
            }
        }
    }

    @Test func theListenerReconnectsAndListensAgain() async throws {
        try await withTestDatabase(maximumConnections: 4) { db in
            let world = try await OrderWorld.make(db)
            try await withEvents(world.harness, db) { listener in
                let session = try await world.harness.session(authenticatedWith: world.fixture.key(.auditor))
                let recorder = PushRecorder(session)
                let subscription = try await world.harness.call(session, "events.subscribe").get()["subscription"]
                let pid = try #require(listener.backendPID)
                let owner = try db.ownerConnection()
                defer { owner.close() }
                try owner.query("SELECT pg_terminate_backend(\(Int32(pid)))")
                try await eventually { recorder.methods().contains("events.resync") }
                #expect(recorder.messages.first?["params"]?["subscription"] == subscription)
                #expect(listener.backendPID != pid)
                let order = try await world.newOrder()
                try await eventually { recorder.methods().contains("order.updated") }
                #expect(recorder.messages.last?["params"]?["order"]?["id"] == order["id"])
            }
        }
    }

    @Test func aSlowSubscriberIsBoundedAndToldWhatItMissed() async throws {
        try await withTestDatabase(maximumConnections: 4) { db in
            let world = try await OrderWorld.make(db)
            try await withEvents(world.harness, db) { _ in
                let session = try await world.harness.session(authenticatedWith: world.fixture.key(.groupAdmin))
                let recorder = PushRecorder(session, capacity: 1)
                let subscription = try await world.harness.call(session, "events.subscribe").get()["subscription"]
                for _ in 0..<3 { _ = try await world.newOrder() }
                // Waits for the hub to have tried all three (a fixed pause was too short on a loaded machine).
                try await eventually { recorder.refused == 2 }
                #expect(recorder.messages.count == 1)
                recorder.setCapacity(10)
                _ = try await world.newOrder()
                try await eventually { recorder.messages.count == 3 }
                #expect(recorder.methods() == ["order.updated", "events.dropped", "order.updated"])
                #expect(recorder.messages[1]["params"]?["count"] == 2)
                // Unsubscribed: nothing more.
                _ = try await world.harness.call(session, "events.unsubscribe", ["subscription": subscription ?? .null]).get()
                _ = try await world.newOrder()
                try await Task.sleep(for: .milliseconds(300))
                #expect(recorder.messages.count == 3)
                let again = await world.harness.call(session, "events.unsubscribe", ["subscription": subscription ?? .null])
                #expect(failure(again)?.code == -32003)
            }
        }
    }
}
