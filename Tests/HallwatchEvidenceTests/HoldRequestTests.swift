import HallwatchCore
import HallwatchEvidence
import Testing

/// ``HoldRequest``: what `hallwatchctl hold add` (and later the web process) accepts, normalised, and each
/// typed refusal.
@Suite struct HoldRequestTests {
    let now = UTCMicros(1_764_000_000_000_000)  // 2025-11-24T16:00:00Z
    let hour: Int64 = 3_600_000_000

    func request(
        camera: String = "lobby", from: String = "-2h", to: String = "-1h", until: String? = nil,
        reason: String = "fight reported", caseID: String = "2026-0042"
    ) throws(HoldInputError) -> HoldRequest {
        try HoldRequest(camera: camera, from: from, to: to, until: until, reason: reason, caseID: caseID, now: now)
    }

    func refusal(_ body: () throws(HoldInputError) -> HoldRequest) -> HoldInputError? {
        do {
            _ = try body()
            return nil
        } catch { return error }
    }

    @Test func acceptedValuesAreNormalised() throws {
        let r = try request(
            from: "2025-11-24T14:00:00Z", to: "now", until: "+30d", reason: "  fight reported, hall B  ",
            caseID: " 2026-0042 ")
        #expect(r.camera == CameraID("lobby"))
        #expect(r.range.from == UTCMicros(now.micros - 2 * hour))
        #expect(r.range.to == now)
        #expect(r.range.until == UTCMicros(now.micros + 30 * 24 * hour))
        #expect(r.reason.text == "fight reported, hall B")
        #expect(r.caseID.text == "2026-0042")
        let hold = r.hold(id: "h-0000002a", createdAt: now)
        #expect(
            hold
                == EvidenceHold(
                    id: "h-0000002a", camera: CameraID("lobby")!, from: UTCMicros(now.micros - 2 * hour), to: now,
                    reason: "fight reported, hall B", caseID: "2026-0042",
                    until: UTCMicros(now.micros + 30 * 24 * hour), createdAt: now))
        #expect(try request(to: "+24h").range.to == UTCMicros(now.micros + 24 * hour))  // exactly 24 h ahead is allowed
        #expect(try request(reason: String(repeating: "é", count: 250)).reason.text.utf8.count == 500)  // bytes, not characters
        #expect(try request().hold(createdAt: now).id.hasPrefix("h-"))
    }

    @Test func eachRefusalIsTyped() {
        let cases: [(HoldInputError.Code, String, () throws(HoldInputError) -> HoldRequest)] = [
            (.invalidCamera, "--camera", { () throws(HoldInputError) in try request(camera: "Lobby Cam!") }),
            (.badLength, "--reason", { () throws(HoldInputError) in try request(reason: "") }),
            (.badLength, "--reason", { () throws(HoldInputError) in try request(reason: "   ") }),
            (
                .badLength, "--reason",
                { () throws(HoldInputError) in try request(reason: String(repeating: "é", count: 251)) }
            ),
            (
                .badLength, "--case",
                { () throws(HoldInputError) in try request(caseID: String(repeating: "x", count: 101)) }
            ),
            (.controlCharacter, "--reason", { () throws(HoldInputError) in try request(reason: "fight\u{1B}[2J") }),
            (.controlCharacter, "--reason", { () throws(HoldInputError) in try request(reason: "fight reported\n") }),
            (.controlCharacter, "--case", { () throws(HoldInputError) in try request(caseID: "42\u{7}") }),
            (.controlCharacter, "--case", { () throws(HoldInputError) in try request(caseID: "42\tb") }),
            (.badTime, "--from", { () throws(HoldInputError) in try request(from: "yesterday") }),
            (.badTime, "--to", { () throws(HoldInputError) in try request(to: "2025-13-01T00:00:00Z") }),
            (.badTime, "--until", { () throws(HoldInputError) in try request(until: "soon") }),
            (.emptyRange, "--from", { () throws(HoldInputError) in try request(from: "-1h", to: "-1h") }),
            (.emptyRange, "--from", { () throws(HoldInputError) in try request(from: "now", to: "-1h") }),
            (.tooFarAhead, "--to", { () throws(HoldInputError) in try request(to: "+25h") }),
            (.untilPast, "--until", { () throws(HoldInputError) in try request(until: "now") }),
            (.untilPast, "--until", { () throws(HoldInputError) in try request(until: "-5m") }),
        ]
        for (i, (code, field, body)) in cases.enumerated() {
            let e = refusal(body)
            #expect(e?.code == code && e?.field == field, "case \(i): \(String(describing: e))")
        }
    }

    @Test func storageRuleIsTheSame() {
        #expect(HoldRange.maxFutureMicros == 24 * hour)
        // The resolved-times initialiser applies the same rules.
        #expect(throws: HoldInputError.self) {
            try HoldRange(from: now, to: UTCMicros(now.micros + 24 * hour + 1), now: now)
        }
        #expect((try? HoldRange(from: UTCMicros(0), to: now, now: now))?.until == nil)
    }
}
