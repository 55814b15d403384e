import ForecourtCore
import Testing

@Suite struct VINTests {
    @Test(arguments: ["1HGCM82633A004352", "1M8GDM9AXKP042788", "11111111111111111", "1FTFW1ET9DFC10312", "1hgcm82633a004352"])
    func knownValidVINs(_ vin: String) {
        #expect(VIN.isValid(vin))
        #expect(VIN.validated(vin) == vin.uppercased())
    }

    @Test(arguments: [
        "1HGCM82643A004352",  // wrong check digit
        "1M8GDM9A1KP042788",  // X expected
        "1HGCM82633A00435",  // 16 characters
        "1HGCM82633A0043521",  // 18 characters
        "1HGCM82633I004352",  // I
        "1HGCM82633O004352",  // O
        "1HGCM82633Q004352",  // Q
        "1HGCM8263-A004352",
        "",
    ])
    func invalidVINs(_ vin: String) {
        #expect(!VIN.isValid(vin))
    }

    @Test func last8() {
        #expect(VIN.validatedLast8("3a004352") == "3A004352")
        #expect(VIN.validatedLast8("3A00435") == nil)
        #expect(VIN.validatedLast8("3AO04352") == nil)
    }
}

@Suite struct ISOWeekTests {
    @Test func parsesAndFormats() throws {
        let week = try #require(ISOWeek("2026-W51"))
        #expect(week.year == 2026 && week.week == 51)
        #expect(week.description == "2026-W51")
        #expect(week.monday == CalendarDate(year: 2026, month: 12, day: 14))
        #expect(ISOWeek("2026-W01")?.monday == CalendarDate(year: 2025, month: 12, day: 29))
    }

    @Test func refusesWeeksThatDoNotExist() {
        #expect(ISOWeek("2026-W53") != nil)  // 2026 starts on a Thursday: 53 weeks
        #expect(ISOWeek("2025-W53") == nil)
        #expect(ISOWeek("2026-W00") == nil)
        #expect(ISOWeek("2026-W54") == nil)
        #expect(ISOWeek("2026W51") == nil)
        #expect(ISOWeek("2026-w51") == nil)
        #expect(ISOWeek("2026-W5") == nil)
    }
}

@Suite struct StageReducerTests {
    @Test func neverBackwardsSkipsAllowed() {
        #expect(StageReducer.apply(.scheduled, to: .ordered) == .advance(to: .scheduled))
        #expect(StageReducer.apply(.paint, to: .ordered) == .advance(to: .paint))
        #expect(StageReducer.apply(.frame, to: .paint) == .late)
        #expect(StageReducer.apply(.paint, to: .paint) == .late)
        #expect(StageReducer.apply(.frame, to: .cancelled) == .refused)
        #expect(StageReducer.apply(.ordered, to: .ordered) == .refused)
    }

    @Test func stageRules() {
        #expect(OrderStage.ordered.mayAmend && !OrderStage.scheduled.mayAmend)
        #expect(OrderStage.scheduled.mayCancel && !OrderStage.frame.mayCancel)
        #expect(!OrderStage.ordered.admitsVIN && OrderStage.scheduled.admitsVIN && OrderStage.delivered.admitsVIN)
        #expect(OrderStage.progression.count == 9)
        #expect(OrderEventKind(rawValue: "ordered") == nil)
        #expect(OrderEventKind(rawValue: "final_inspection") == .stage(.finalInspection))
        #expect(OrderEventKind(rawValue: "hold") == .hold)
    }

    @Test func trackingStates() {
        let states = StageReducer.states(current: .paint, reached: .paint).map { $0.1 }
        #expect(states == ["done", "done", "done", "current", "pending", "pending", "pending", "pending", "pending"])
        let cancelled = StageReducer.states(current: .cancelled, reached: .scheduled).map { $0.1 }
        #expect(cancelled == ["done", "done", "pending", "pending", "pending", "pending", "pending", "pending", "pending"])
        #expect(!cancelled.contains("current"))
    }
}
