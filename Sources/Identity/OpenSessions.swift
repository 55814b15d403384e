import Foundation
import RPC
import Synchronization

/// The authenticated sessions of this instance, by the key they rest on, for the revocation
/// watcher (`IdentityService.checkRevocations`). Weak: a session leaves when it is released or
/// closes.
final class OpenSessions: Sendable {
    private struct Entry {
        weak var session: Session?
    }

    private let byKey = Mutex<[UUID: [ObjectIdentifier: Entry]]>([:])

    func add(_ session: Session, keyID: UUID) {
        let id = ObjectIdentifier(session)
        byKey.withLock { $0[keyID, default: [:]][id] = Entry(session: session) }
        session.onClose { [weak self] in self?.remove(id, keyID: keyID) }
    }

    private func remove(_ id: ObjectIdentifier, keyID: UUID) {
        byKey.withLock { byKey in
            byKey[keyID]?[id] = nil
            if byKey[keyID]?.isEmpty == true { byKey[keyID] = nil }
        }
    }

    var count: Int { byKey.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Every live session with the key it was registered under.
    func all() -> [(keyID: UUID, session: Session)] {
        byKey.withLock { byKey in
            var live: [(keyID: UUID, session: Session)] = []
            for (keyID, entries) in byKey {
                for entry in entries.values { if let session = entry.session { live.append((keyID, session)) } }
            }
            // Released sessions (never closed, as in tests) are dropped here.
            byKey = byKey.compactMapValues { entries in
                let kept = entries.filter { $0.value.session != nil }
                return kept.isEmpty ? nil : kept
            }
            return live
        }
    }
}

/// Client-certificate fingerprints recently found to map to no key, so that mutual-TLS probes
/// with an unregistered certificate cost one database lookup per `lifetime`, not one per
/// connection and request. Bounded: past `capacity`, expired entries are dropped, and new ones
/// are not remembered until there is room (they then cost a lookup each, as before).
final class UnknownFingerprints: Sendable {
    private let entries = Mutex<[[UInt8]: ContinuousClock.Instant]>([:])
    let lifetime: Duration
    let capacity: Int

    init(lifetime: Duration = .seconds(30), capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func contains(_ fingerprint: [UInt8]) -> Bool {
        entries.withLock { entries in
            guard let until = entries[fingerprint] else { return false }
            if until > .now { return true }
            entries[fingerprint] = nil
            return false
        }
    }

    func insert(_ fingerprint: [UInt8]) {
        entries.withLock { entries in
            let now = ContinuousClock.now
            if entries.count >= capacity { entries = entries.filter { $0.value > now } }
            if entries.count < capacity { entries[fingerprint] = now + lifetime }
        }
    }

    func remove(_ fingerprint: [UInt8]) {
        _ = entries.withLock { $0.removeValue(forKey: fingerprint) }
    }
}
