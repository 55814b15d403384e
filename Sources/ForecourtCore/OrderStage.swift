/// The lifecycle stages of an order (docs/protocol.md, "orders"), in production order, plus the
/// terminal `cancelled`.
public enum OrderStage: String, Sendable, CaseIterable, Hashable, Comparable {
    case ordered
    case scheduled
    case frame
    case paint
    case trim
    case finalInspection = "final_inspection"
    case shipped
    case atDealer = "at_dealer"
    case delivered
    case cancelled

    /// The nine stages an order moves through, in order (`cancelled` excluded).
    public static let progression: [OrderStage] = [
        .ordered, .scheduled, .frame, .paint, .trim, .finalInspection, .shipped, .atDealer, .delivered,
    ]

    /// Position in `progression`; `cancelled` has none.
    public var rank: Int? { Self.progression.firstIndex(of: self) }

    /// Ordered by `rank`; `cancelled` sorts after every other stage.
    public static func < (lhs: OrderStage, rhs: OrderStage) -> Bool {
        (lhs.rank ?? Int.max) < (rhs.rank ?? Int.max)
    }

    /// `order.amend` is allowed only here: the production schedule freezes an order after.
    public var mayAmend: Bool { self == .ordered }

    /// `order.cancel` is allowed only before `frame`.
    public var mayCancel: Bool { self == .ordered || self == .scheduled }

    /// No event moves an order out of these.
    public var isTerminal: Bool { self == .delivered || self == .cancelled }

    /// Stages a VIN may be given with (`scheduled` and later).
    public var admitsVIN: Bool {
        guard let rank, let scheduled = OrderStage.scheduled.rank else { return false }
        return rank >= scheduled
    }
}

/// The `event` of `order.record_event`: a stage after `ordered`, or `hold`, `release`, `eta`.
public enum OrderEventKind: Sendable, Hashable {
    case stage(OrderStage)
    case hold
    case release
    case eta

    /// Parses the contract's name; `ordered` and `cancelled` are not events of the feed.
    public init?(rawValue: String) {
        switch rawValue {
        case "hold": self = .hold
        case "release": self = .release
        case "eta": self = .eta
        default:
            guard let stage = OrderStage(rawValue: rawValue), stage != .ordered, stage != .cancelled else { return nil }
            self = .stage(stage)
        }
    }

    public var rawValue: String {
        switch self {
        case .stage(let stage): stage.rawValue
        case .hold: "hold"
        case .release: "release"
        case .eta: "eta"
        }
    }
}

/// The reason codes of holds and ETA revisions.
public enum DelayReason: String, Sendable, CaseIterable, Hashable {
    case partsShortage = "parts_shortage"
    case qualityHold = "quality_hold"
    case carrierDelay = "carrier_delay"
    case damage
    case transportShortage = "transport_shortage"
    case other
}

/// The stage rules of the factory feed as pure logic (no I/O), so they are unit-tested alone.
public enum StageReducer {
    /// What a stage event does to an order in `current`.
    public enum Outcome: Sendable, Equatable {
        /// The order moves to the event's stage (possibly skipping stages).
        case advance(to: OrderStage)
        /// The event is for the current or an earlier stage: kept in the timeline as late,
        /// nothing else changes.
        case late
        /// The lifecycle forbids it (a cancelled order).
        case refused
    }

    /// The stage never goes backwards; skips are allowed; a cancelled order takes no stage event.
    public static func apply(_ event: OrderStage, to current: OrderStage) -> Outcome {
        guard current != .cancelled, event != .cancelled, event != .ordered else { return .refused }
        guard let eventRank = event.rank, let currentRank = current.rank else { return .refused }
        return eventRank > currentRank ? .advance(to: event) : .late
    }

    /// Each stage's state for a tracking page: done before the current stage, current, pending
    /// after. For a cancelled order (`reached` the last stage it had reached) there is no current one.
    public static func states(current: OrderStage, reached: OrderStage) -> [(OrderStage, String)] {
        let last = (current == .cancelled ? reached : current).rank ?? 0
        return OrderStage.progression.map { stage in
            let rank = stage.rank ?? 0
            if current == .cancelled { return (stage, rank <= last ? "done" : "pending") }
            if rank < last { return (stage, "done") }
            if rank == last { return (stage, "current") }
            return (stage, "pending")
        }
    }
}
